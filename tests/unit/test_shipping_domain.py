"""Which methods a cart may ship by, which one it pays, and what staff may set up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.carts import Cart, CartLine, PricingRules, price_cart
from domain.catalog import InventoryLevel
from domain.customers import Customer
from domain.errors import ForbiddenError, Rejected, UserErrorCode
from domain.shipping import (
    Shipping,
    ShippingMethod,
    choose,
    default_zone_methods,
    delivery_options,
    method_handle,
)
from domain.shipping_admin import MethodDraft, ShippingAdmin
from tests.fakes.catalog import a_product, a_variant

T0 = datetime(2026, 3, 1, tzinfo=UTC)
RULES = PricingRules("USD", shipping_flat_rate=599, free_shipping_threshold=5_000)


def method(
    id: int,
    price: int,
    low: int | None = None,
    high: int | None = None,
    *,
    title: str = "Standard",
    days: tuple[int, int] = (3, 5),
    active: bool = True,
) -> ShippingMethod:
    return ShippingMethod(id, 1, title, price, low, high, days[0], days[1], active)


def test_a_subtotal_range_includes_both_ends() -> None:
    paid, free = method(1, 499, high=4_999), method(2, 0, low=5_000)

    assert delivery_options([paid, free], 4_999) == (paid,)
    assert delivery_options([paid, free], 5_000) == (free,)
    assert delivery_options([paid, free], 0) == (paid,)


def test_options_come_cheapest_first_and_inactive_ones_never() -> None:
    express = method(1, 1_500, title="Express", days=(1, 2))
    standard = method(2, 500)
    retired = method(3, 100, active=False)

    assert delivery_options([express, standard, retired], 2_000) == (standard, express)


def test_the_chosen_option_applies_while_available_else_the_cheapest() -> None:
    standard, express = method(1, 500), method(2, 1_500, title="Express")
    options = delivery_options([standard, express], 2_000)

    assert choose(options, express.handle) == express
    assert choose(options, "gone") == standard
    assert choose(options, None) == standard
    assert choose((), express.handle) is None


def test_handles_are_stable_opaque_and_distinct() -> None:
    assert method(7, 0).handle == method(7, 999, title="Renamed").handle
    assert method(7, 0).handle != method(8, 0).handle
    assert method(7, 0).handle == method_handle("method:7")
    assert len(method(7, 0).handle) == 20 and method(7, 0).handle != "7"


def test_the_default_zone_is_todays_flat_rate() -> None:
    paid, free = default_zone_methods(599, 5_000)

    assert (paid.title, paid.price, paid.max_subtotal) == ("Standard", 599, 4_999)
    assert (free.title, free.price, free.min_subtotal) == ("Standard", 0, 5_000)
    assert [m.price for m in default_zone_methods(599, 0)] == [0]


async def test_a_country_in_no_zone_gets_the_default_zone_and_one_in_an_empty_zone_none() -> None:
    class Rates:
        async def methods_for_country(self, country_code: str) -> list[ShippingMethod] | None:
            return {"NZ": [], "US": [method(1, 300)]}.get(country_code)

    shipping = Shipping(Rates(), default_zone_methods(599, 5_000))

    assert [m.price for m in await shipping.methods_for("US")] == [300]
    assert await shipping.methods_for("NZ") == ()
    assert [m.price for m in await shipping.methods_for("GB")] == [599, 0]
    assert [m.price for m in await shipping.methods_for(None)] == [599, 0]
    assert await Shipping(Rates(), ()).methods_for("GB") == ()


def _cart(country: str | None, handle: str | None = None, quantity: int = 1) -> Cart:
    return Cart("c", None, None, country, None, (CartLine(10, quantity),), T0, T0, handle)


def _price(cart: Cart, methods: list[ShippingMethod] | None) -> tuple[int, int, list[str]]:
    product = a_product(1, "Mug", 2_000)
    variant = a_variant(10, 1, 2_000)
    priced = price_cart(
        cart, {10: variant}, {1: product}, {10: InventoryLevel(10, 5)}, RULES, methods
    )
    return priced.cost.shipping, priced.cost.total, [o.title for o in priced.delivery_options]


def test_the_cart_pays_the_chosen_method_and_without_a_country_shows_no_options() -> None:
    standard, express = method(1, 500), method(2, 1_500, title="Express")

    assert _price(_cart("US"), [standard, express]) == (500, 2_500, ["Standard", "Express"])
    assert _price(_cart("US", express.handle), [standard, express])[:2] == (1_500, 3_500)
    assert _price(_cart(None), None) == (599, 2_599, [])  # today's estimate
    assert _price(_cart("US", quantity=3), None) == (0, 6_000, ["Standard"])  # free from $50
    assert _price(_cart("NZ"), []) == (0, 2_000, [])  # checkout refuses this one


STAFF = Customer(1, "boss@example.com", "Boss", True, T0)


class NoEditor:
    async def create_method(self, zone_id: int, fields: object) -> object:
        raise AssertionError("refused input must never reach storage")


@pytest.mark.parametrize(
    ("draft", "code", "field"),
    [
        (MethodDraft(1, "Std", "-1.00"), UserErrorCode.INVALID_PRICE, "price"),
        (MethodDraft(1, "Std", "abc"), UserErrorCode.INVALID_PRICE, "price"),
        (MethodDraft(1, "", "1.00"), UserErrorCode.BLANK, "title"),
        (MethodDraft(1, "x" * 101, "1.00"), UserErrorCode.TOO_LONG, "title"),
        (
            MethodDraft(1, "Std", "1", "50", "10"),
            UserErrorCode.INVALID_SUBTOTAL_RANGE,
            "maxSubtotal",
        ),
        (
            MethodDraft(1, "Std", "1", min_delivery_days=5, max_delivery_days=2),
            UserErrorCode.INVALID_DELIVERY_RANGE,
            "maxDeliveryDays",
        ),
        (
            MethodDraft(1, "Std", "1", min_delivery_days=-1),
            UserErrorCode.INVALID_DELIVERY_RANGE,
            "minDeliveryDays",
        ),
    ],
)
async def test_a_bad_method_is_refused_before_storage(
    draft: MethodDraft, code: UserErrorCode, field: str
) -> None:
    admin = ShippingAdmin(NoEditor(), "USD")  # type: ignore[arg-type]

    with pytest.raises(Rejected) as refused:
        await admin.create_method(STAFF, draft)

    assert [(e.code, e.field[0]) for e in refused.value.errors] == [(code, field)]


async def test_only_staff_set_shipping_up() -> None:
    admin = ShippingAdmin(NoEditor(), "USD")  # type: ignore[arg-type]
    shopper = Customer(2, "ann@example.com", "Ann", False, T0)

    with pytest.raises(ForbiddenError):
        await admin.create_method(shopper, MethodDraft(1, "Std", "1.00"))
