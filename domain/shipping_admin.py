"""Staff set up shipping: zones (countries) and their methods (price, subtotal range,
delivery estimate).

Each use case checks its input here, then asks the editor port for one transaction that
writes the rows and their outbox event. A country already in another zone is refused
with the countries named; the unique key on the country is the backstop for two staff
members racing for one country.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from domain.addresses import check_country
from domain.catalog_admin import ensure_staff
from domain.catalog_rules import PRICE_MAX
from domain.customers import Customer
from domain.errors import InvalidInput, Rejected, UserError, UserErrorCode
from domain.money import Money, parse_amount
from domain.shipping import ShippingMethod, ShippingZone
from domain.text_input import string_problem

ZONE_NAME_MAX = 100
METHOD_TITLE_MAX = 100
COUNTRIES_MAX = 250
METHODS_PER_ZONE_MAX = 20
DELIVERY_DAYS_MAX = 365

T = TypeVar("T")


class ShippingConflict(StrEnum):
    ZONE_MISSING = "zone missing"
    METHOD_MISSING = "method missing"
    COUNTRY_TAKEN = "country taken"
    METHOD_LIMIT = "method limit"


class ShippingConflictError(Exception):
    """Raised by the editor; its transaction rolled back, nothing was written."""

    def __init__(self, conflict: ShippingConflict, countries: Sequence[str] = ()) -> None:
        super().__init__(conflict.value)
        self.conflict = conflict
        self.countries = tuple(countries)


@dataclass(frozen=True, slots=True)
class MethodFields:
    """A method's fields, checked; prices and subtotals in minor units."""

    title: str
    price: int
    min_subtotal: int | None
    max_subtotal: int | None
    min_delivery_days: int
    max_delivery_days: int
    active: bool = True


@dataclass(frozen=True, slots=True)
class MethodDraft:
    zone_id: int
    title: str
    price: str  # decimal strings, as clients send money
    min_subtotal: str | None = None
    max_subtotal: str | None = None
    min_delivery_days: int = 3
    max_delivery_days: int = 7
    active: bool = True


class Unchanged(StrEnum):
    """An update leaves a nullable field alone (null clears it)."""

    KEEP = "keep"


KEEP = Unchanged.KEEP


@dataclass(frozen=True, slots=True)
class MethodChanges:
    title: str | None = None
    price: str | None = None
    min_subtotal: str | Unchanged | None = KEEP
    max_subtotal: str | Unchanged | None = KEEP
    min_delivery_days: int | None = None
    max_delivery_days: int | None = None
    active: bool | None = None


class ShippingEditor(Protocol):
    async def create_zone(self, name: str, country_codes: Sequence[str]) -> ShippingZone: ...

    async def update_zone(
        self, zone_id: int, name: str | None, country_codes: Sequence[str] | None
    ) -> ShippingZone: ...

    async def create_method(self, zone_id: int, fields: MethodFields) -> ShippingMethod: ...

    async def update_method(
        self, method_id: int, revise: Callable[[ShippingMethod], MethodFields]
    ) -> ShippingMethod:
        """Calls `revise` with the locked current row; a Rejected it raises rolls back."""
        ...

    async def delete_method(self, method_id: int) -> ShippingMethod: ...


class ShippingAdmin:
    def __init__(self, editor: ShippingEditor, currency_code: str) -> None:
        self._editor = editor
        self._currency = currency_code

    async def create_zone(
        self, staff: Customer, name: str, country_codes: Sequence[str]
    ) -> ShippingZone:
        ensure_staff(staff)
        errors = _name_errors(name, "name", ZONE_NAME_MAX)
        countries = _countries(country_codes, errors)
        if errors:
            raise Rejected(errors)
        return await _write(lambda: self._editor.create_zone(name.strip(), countries))

    async def update_zone(
        self,
        staff: Customer,
        zone_id: int,
        name: str | None,
        country_codes: Sequence[str] | None,
    ) -> ShippingZone:
        ensure_staff(staff)
        errors = [] if name is None else _name_errors(name, "name", ZONE_NAME_MAX)
        countries = None if country_codes is None else _countries(country_codes, errors)
        if errors:
            raise Rejected(errors)
        clean_name = None if name is None else name.strip()
        return await _write(lambda: self._editor.update_zone(zone_id, clean_name, countries))

    async def create_method(self, staff: Customer, draft: MethodDraft) -> ShippingMethod:
        ensure_staff(staff)
        fields = self._check(
            draft.title,
            draft.price,
            draft.min_subtotal,
            draft.max_subtotal,
            draft.min_delivery_days,
            draft.max_delivery_days,
            draft.active,
        )
        return await _write(lambda: self._editor.create_method(draft.zone_id, fields), "zoneId")

    async def update_method(
        self, staff: Customer, method_id: int, changes: MethodChanges
    ) -> ShippingMethod:
        ensure_staff(staff)

        def revise(current: ShippingMethod) -> MethodFields:
            money = self._money_text
            return self._check(
                current.title if changes.title is None else changes.title,
                money(current.price) if changes.price is None else changes.price,
                _kept(changes.min_subtotal, current.min_subtotal, money),
                _kept(changes.max_subtotal, current.max_subtotal, money),
                _or(changes.min_delivery_days, current.min_delivery_days),
                _or(changes.max_delivery_days, current.max_delivery_days),
                current.active if changes.active is None else changes.active,
            )

        return await _write(lambda: self._editor.update_method(method_id, revise))

    async def delete_method(self, staff: Customer, method_id: int) -> ShippingMethod:
        ensure_staff(staff)
        return await _write(lambda: self._editor.delete_method(method_id))

    def _check(
        self,
        title: str,
        price: str,
        min_subtotal: str | None,
        max_subtotal: str | None,
        min_days: int,
        max_days: int,
        active: bool,
    ) -> MethodFields:
        errors = _name_errors(title, "title", METHOD_TITLE_MAX)
        amounts: dict[str, int | None] = {}
        for field, text in (
            ("price", price),
            ("minSubtotal", min_subtotal),
            ("maxSubtotal", max_subtotal),
        ):
            amounts[field] = None if text is None else self._amount(text, field, errors)
        low, high = amounts["minSubtotal"], amounts["maxSubtotal"]
        if low is not None and high is not None and low > high:
            errors.append(
                UserError(
                    UserErrorCode.INVALID_SUBTOTAL_RANGE,
                    "minSubtotal must not be more than maxSubtotal",
                    ("maxSubtotal",),
                )
            )
        for field, days in (("minDeliveryDays", min_days), ("maxDeliveryDays", max_days)):
            if not 0 <= days <= DELIVERY_DAYS_MAX:
                message = f"{field} must be 0 to {DELIVERY_DAYS_MAX}"
                errors.append(UserError(UserErrorCode.INVALID_DELIVERY_RANGE, message, (field,)))
        if 0 <= min_days <= DELIVERY_DAYS_MAX and min_days > max_days:
            message = "minDeliveryDays must not be more than maxDeliveryDays"
            errors.append(
                UserError(UserErrorCode.INVALID_DELIVERY_RANGE, message, ("maxDeliveryDays",))
            )
        if errors:
            raise Rejected(errors)
        price_minor = amounts["price"]
        assert price_minor is not None
        return MethodFields(title.strip(), price_minor, low, high, min_days, max_days, active)

    def _amount(self, text: str, field: str, errors: list[UserError]) -> int | None:
        """0 or more (a free method costs 0), at most PRICE_MAX."""
        try:
            minor = parse_amount(text, self._currency, field=field)
        except InvalidInput as error:
            errors.append(UserError(UserErrorCode.INVALID_PRICE, error.message, (field,)))
            return None
        if not 0 <= minor <= PRICE_MAX:
            message = f"{field} must be 0 or more and at most {PRICE_MAX}"
            errors.append(UserError(UserErrorCode.INVALID_PRICE, message, (field,)))
            return None
        return minor

    def _money_text(self, minor: int) -> str:
        return Money(minor, self._currency).to_decimal_string()


def _kept(
    change: str | Unchanged | None, current: int | None, money: Callable[[int], str]
) -> str | None:
    if change is KEEP:
        return None if current is None else money(current)
    return change if isinstance(change, str) else None


def _or(value: int | None, current: int) -> int:
    return current if value is None else value


def _name_errors(value: str, field: str, maximum: int) -> list[UserError]:
    problem = string_problem(value, maximum)
    if problem is not None:
        code = UserErrorCode.TOO_LONG if len(value) > maximum else UserErrorCode.INVALID
        return [UserError(code, f"{field} {problem}", (field,))]
    if not value.strip():
        return [UserError(UserErrorCode.BLANK, f"{field} is required", (field,))]
    return []


def _countries(codes: Sequence[str], errors: list[UserError]) -> tuple[str, ...]:
    if len(codes) > COUNTRIES_MAX:
        message = f"a zone holds at most {COUNTRIES_MAX} countries"
        errors.append(UserError(UserErrorCode.INVALID, message, ("countryCodes",)))
        return ()
    found: dict[str, None] = {}
    for index, code in enumerate(codes):
        try:
            found[check_country(code[:8], ("countryCodes", str(index)))] = None
        except Rejected as rejected:
            errors.extend(rejected.errors)
    return tuple(sorted(found))


async def _write(write: Callable[[], Awaitable[T]], zone_field: str = "id") -> T:
    try:
        return await write()
    except ShippingConflictError as error:
        raise _rejection(error, zone_field) from None


def _rejection(error: ShippingConflictError, zone_field: str) -> Rejected:
    if error.conflict is ShippingConflict.ZONE_MISSING:
        return Rejected.one(
            UserErrorCode.SHIPPING_ZONE_NOT_FOUND, "no such shipping zone", zone_field
        )
    if error.conflict is ShippingConflict.METHOD_MISSING:
        return Rejected.one(
            UserErrorCode.SHIPPING_METHOD_NOT_FOUND, "no such shipping method", "id"
        )
    if error.conflict is ShippingConflict.METHOD_LIMIT:
        return Rejected.one(
            UserErrorCode.SHIPPING_METHOD_LIMIT_REACHED,
            f"a zone holds at most {METHODS_PER_ZONE_MAX} methods",
            "zoneId",
        )
    taken = ", ".join(error.countries) or "a country"
    return Rejected.one(
        UserErrorCode.COUNTRY_IN_ANOTHER_ZONE,
        f"{taken} already belongs to another zone; a country is in at most one zone",
        "countryCodes",
    )
