"""Shipping zones and their methods: what a cart may be delivered by, and for how much.

A zone is a set of countries (a country is in at most one zone) holding methods; a
method has a price and, optionally, a subtotal range it applies to (both ends
inclusive: "free from $50" is a method priced 0 with min_subtotal 5000, and the paid
one below it has max_subtotal 4999). A country in no staff zone falls to the built-in
default zone, "rest of world", made from the flat-rate settings (SHIPPING_FLAT_RATE
below FREE_SHIPPING_THRESHOLD, free from it), so a new store ships as before with no
setup; with SHIPPING_DEFAULT_ZONE off such a country gets no methods at all. A staff
zone with no active method (or none for the subtotal) means "we do not ship there".

When the shopper picks nothing, or picked a method that no longer applies (deleted,
deactivated, another subtotal or country), the cheapest available method applies and
is what the cart shows, so checkout charges exactly what the cart shows at that moment
and records the method on the order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_ZONE_NAME = "Rest of world"
DEFAULT_METHOD_TITLE = "Standard"
DEFAULT_MIN_DAYS, DEFAULT_MAX_DAYS = 3, 7
HANDLE_MAX = 64


def method_handle(key: str) -> str:
    """Stable and opaque: the same method always has the same handle, which says
    nothing about ids or counts."""
    return hashlib.sha256(f"shipping-method:{key}".encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class ShippingMethod:
    id: int | None  # None for the built-in default zone's methods
    zone_id: int | None
    title: str
    price: int
    min_subtotal: int | None
    max_subtotal: int | None
    min_delivery_days: int
    max_delivery_days: int
    active: bool = True
    key: str = ""  # what the handle is made from; "method:<id>" for stored methods

    @property
    def handle(self) -> str:
        return method_handle(self.key or f"method:{self.id}")

    def applies_to(self, subtotal: int) -> bool:
        if not self.active:
            return False
        if self.min_subtotal is not None and subtotal < self.min_subtotal:
            return False
        return self.max_subtotal is None or subtotal <= self.max_subtotal


@dataclass(frozen=True, slots=True)
class ShippingZone:
    id: int
    name: str
    country_codes: tuple[str, ...]
    methods: tuple[ShippingMethod, ...]


def default_zone_methods(flat_rate: int, free_threshold: int) -> tuple[ShippingMethod, ...]:
    """Today's flat rate as methods: "Standard" at the flat rate below the threshold and
    free from it (a threshold of 0 makes shipping always free)."""
    free = ShippingMethod(
        None,
        None,
        DEFAULT_METHOD_TITLE,
        0,
        free_threshold,
        None,
        DEFAULT_MIN_DAYS,
        DEFAULT_MAX_DAYS,
        key="default:free",
    )
    if free_threshold <= 0:
        return (free,)
    paid = ShippingMethod(
        None,
        None,
        DEFAULT_METHOD_TITLE,
        flat_rate,
        None,
        free_threshold - 1,
        DEFAULT_MIN_DAYS,
        DEFAULT_MAX_DAYS,
        key="default:standard",
    )
    return (paid, free)


def delivery_options(
    methods: Sequence[ShippingMethod], subtotal: int
) -> tuple[ShippingMethod, ...]:
    """The methods that apply to this subtotal, cheapest first (then fastest, then by
    title and handle, so the order never depends on storage)."""
    return tuple(
        sorted(
            (m for m in methods if m.applies_to(subtotal)),
            key=lambda m: (m.price, m.max_delivery_days, m.title, m.handle),
        )
    )


def choose(options: Sequence[ShippingMethod], selected: str | None) -> ShippingMethod | None:
    """The selected option while it is available, else the cheapest; None when none."""
    for option in options:
        if option.handle == selected:
            return option
    return options[0] if options else None


class ShippingRates(Protocol):
    async def methods_for_country(self, country_code: str) -> Sequence[ShippingMethod] | None:
        """The active methods of the staff zone holding this country; None when no zone
        holds it (an empty list: a zone holds it and ships nothing there)."""
        ...


class Shipping:
    """Which methods a country may choose from: its zone's, else the default zone's."""

    def __init__(
        self, rates: ShippingRates | None, default_methods: Sequence[ShippingMethod]
    ) -> None:
        self._rates = rates
        self._default = tuple(default_methods)

    @property
    def default_methods(self) -> tuple[ShippingMethod, ...]:
        return self._default

    async def methods_for(self, country_code: str | None) -> tuple[ShippingMethod, ...]:
        """With no country yet, the default zone's methods give the cart an estimate
        (what it showed before zones existed); no query is made for it."""
        if country_code is None or self._rates is None:
            return self._default
        found = await self._rates.methods_for_country(country_code)
        return self._default if found is None else tuple(found)
