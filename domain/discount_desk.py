"""Discounts as stored: the store port the cart, checkout and staff use, and the staff's
use cases (`DiscountAdmin`).

The rules (how discounts combine, why a code does not apply) are domain.discounts'. The
count of uses and the once-per-customer guard are taken in the order transaction
(persistence.orders.order_store), never here: staff writes never touch `times_used`, and
a new usage limit is checked against it by the store's conditional UPDATE, not by reading
it first (checkout counts uses concurrently).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from domain.catalog_admin import ensure_staff
from domain.catalog_rules import PRICE_MAX
from domain.customers import Customer
from domain.discounts import (
    MAX_BASIS_POINTS,
    Discount,
    DiscountKind,
    DiscountScope,
    DiscountValue,
    normalize_code,
)
from domain.errors import InvalidInput, Rejected, UserError, UserErrorCode
from domain.money import Money, parse_amount
from domain.pagination import Page, PageRequest, page_request
from domain.text_input import string_problem
from domain.time_input import moment_problem

TITLE_MAX = 200
SCOPE_IDS_MAX = 100
USAGE_LIMIT_MAX = 1_000_000_000
DISCOUNTS_ORDERING = "discounts"

V = TypeVar("V")


def buyer_keys(customer_id: int | None, email_index: str | None) -> tuple[str, ...]:
    """Who a once-per-customer discount counts: a signed-in customer by id, and (signed in
    or not) the blind index of the order's normalised email, so a guest cannot use a code
    twice by checking out twice with one email, nor a customer by signing out."""
    keys = []
    if customer_id is not None:
        keys.append(f"customer:{customer_id}")
    if email_index is not None:
        keys.append(f"email:{email_index}")
    return tuple(keys)


class DiscountStore(Protocol):
    async def automatic(self, now: datetime) -> Sequence[Discount]:
        """The active automatic discounts that have not ended at `now`: one statement."""
        ...

    async def by_codes(self, codes: Sequence[str]) -> Sequence[Discount]:
        """The discounts with these canonical codes, whatever their state."""
        ...

    async def used_by(self, keys: Sequence[str], discount_ids: Collection[int]) -> frozenset[int]:
        """The ids among `discount_ids` that one of these buyers already used."""
        ...

    async def create(self, discount: Discount) -> Discount:
        """Writes it (its id ignored) and DiscountChanged in one transaction; the stored
        discount with its id. Raises DiscountCodeTaken when another has its code."""
        ...

    async def by_id(self, discount_id: int) -> Discount | None: ...

    async def update(self, discount: Discount) -> Discount:
        """Writes every field of the discount with `discount.id` but its count of uses,
        and DiscountChanged "updated", in one transaction. The new usage limit is checked
        against the count of uses in the UPDATE itself. Raises DiscountMissing,
        DiscountCodeTaken or UsageLimitBelowUses (nothing written)."""
        ...

    async def deactivate(self, discount_id: int) -> Discount:
        """Marks it inactive and writes DiscountChanged "deactivated"; DiscountMissing."""
        ...

    async def page(self, request: PageRequest) -> Page[Discount]:
        """Every discount, newest first (by id, descending)."""
        ...

    async def existing(
        self, product_ids: Collection[int], category_ids: Collection[int]
    ) -> tuple[frozenset[int], frozenset[int]]:
        """Which of these product and category ids exist."""
        ...


class DiscountCodeTaken(Exception):
    """Another discount has this code."""


class DiscountMissing(Exception):
    """No discount has this id."""


class UsageLimitBelowUses(Exception):
    """The new usage limit is below the discount's count of uses."""


class Unchanged(StrEnum):
    """An update leaves a nullable field alone (null clears it)."""

    KEEP = "keep"


KEEP = Unchanged.KEEP


@dataclass(frozen=True, slots=True)
class DiscountDraft:
    """A discount as staff send it: amounts still decimal strings, ids decoded (None for
    a global id that is not one of a product or category)."""

    title: str
    value_type: DiscountKind
    code: str | None = None
    basis_points: int | None = None
    amount: str | None = None
    scope: DiscountScope = DiscountScope.ORDER
    product_ids: Sequence[int | None] = ()
    category_ids: Sequence[int | None] = ()
    minimum_subtotal: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    once_per_customer: bool = False
    active: bool = True


@dataclass(frozen=True, slots=True)
class DiscountChanges:
    """An update: None (or KEEP for a nullable field) keeps the current value. A value
    left as it is that no longer fits the new type or scope (basis points when the type
    becomes FIXED_AMOUNT, product ids when the scope becomes CATEGORIES) is dropped."""

    title: str | None = None
    code: str | Unchanged | None = KEEP
    value_type: DiscountKind | None = None
    basis_points: int | None = None
    amount: str | None = None
    scope: DiscountScope | None = None
    product_ids: Sequence[int | None] | None = None
    category_ids: Sequence[int | None] | None = None
    minimum_subtotal: str | Unchanged | None = KEEP
    starts_at: datetime | Unchanged | None = KEEP
    ends_at: datetime | Unchanged | None = KEEP
    usage_limit: int | Unchanged | None = KEEP
    once_per_customer: bool | None = None
    active: bool | None = None


def discounts_page_request(first: int | None, after: str | None, max_size: int) -> PageRequest:
    return page_request(first, after, ordering=DISCOUNTS_ORDERING, arity=1, max_size=max_size)


class DiscountAdmin:
    """Staff create, change, deactivate and list discounts. Each write checks its whole
    input first (every problem at once, as userErrors) and is one store transaction."""

    def __init__(
        self,
        store: DiscountStore,
        currency_code: str,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_change` runs after each write (the process's DiscountFinder forgets the
        automatic discounts it kept, so this process's carts see the change at once)."""
        self._store = store
        self._currency = currency_code
        self._on_change = on_change

    async def create(self, staff: Customer, draft: DiscountDraft) -> Discount:
        ensure_staff(staff)
        discount = await self._checked(0, draft, check_ids=True)
        try:
            changed = await self._store.create(discount)
        except DiscountCodeTaken:
            raise _code_taken() from None
        self._on_change()
        return changed

    async def update(
        self, staff: Customer, discount_id: int | None, changes: DiscountChanges
    ) -> Discount:
        ensure_staff(staff)
        current = None if discount_id is None else await self._store.by_id(discount_id)
        if current is None:
            raise _missing()
        draft, ids_given = self._merged(current, changes)
        discount = await self._checked(current.id, draft, check_ids=ids_given)
        try:
            changed = await self._store.update(discount)
        except DiscountMissing:
            raise _missing() from None
        except DiscountCodeTaken:
            raise _code_taken() from None
        except UsageLimitBelowUses:
            message = "usageLimit must not be below the number of times it was already used"
            raise Rejected.one(UserErrorCode.INVALID, message, "usageLimit") from None
        self._on_change()
        return changed

    async def deactivate(self, staff: Customer, discount_id: int | None) -> Discount:
        ensure_staff(staff)
        if discount_id is None:
            raise _missing()
        try:
            changed = await self._store.deactivate(discount_id)
        except DiscountMissing:
            raise _missing() from None
        self._on_change()
        return changed

    async def page(self, staff: Customer, request: PageRequest) -> Page[Discount]:
        ensure_staff(staff)
        return await self._store.page(request)

    # -- checks -------------------------------------------------------------------------

    def _merged(self, current: Discount, changes: DiscountChanges) -> tuple[DiscountDraft, bool]:
        """The draft the update leaves, and whether the client sent scope ids (only those
        are looked up: the ones kept were checked when they were set)."""
        kind = changes.value_type or current.value.kind
        scope = changes.scope or current.scope
        same_kind = kind is current.value.kind
        basis_points = changes.basis_points
        if basis_points is None and same_kind and kind is DiscountKind.PERCENTAGE:
            basis_points = current.value.amount
        amount = changes.amount
        if amount is None and same_kind and kind is DiscountKind.FIXED_AMOUNT:
            amount = self._money_text(current.value.amount)
        same_scope = scope is current.scope
        product_ids: Sequence[int | None] = (
            changes.product_ids
            if changes.product_ids is not None
            else (sorted(current.product_ids) if same_scope else ())
        )
        category_ids: Sequence[int | None] = (
            changes.category_ids
            if changes.category_ids is not None
            else (sorted(current.category_ids) if same_scope else ())
        )
        current_minimum = current.minimum_subtotal
        minimum = (
            (None if current_minimum is None else self._money_text(current_minimum))
            if isinstance(changes.minimum_subtotal, Unchanged)
            else changes.minimum_subtotal
        )
        draft = DiscountDraft(
            title=current.title if changes.title is None else changes.title,
            value_type=kind,
            code=_kept(changes.code, current.code),
            basis_points=basis_points,
            amount=amount,
            scope=scope,
            product_ids=product_ids,
            category_ids=category_ids,
            minimum_subtotal=minimum,
            starts_at=_kept(changes.starts_at, current.starts_at),
            ends_at=_kept(changes.ends_at, current.ends_at),
            usage_limit=_kept(changes.usage_limit, current.usage_limit),
            once_per_customer=_or(changes.once_per_customer, current.once_per_customer),
            active=_or(changes.active, current.active),
        )
        ids_given = changes.product_ids is not None or changes.category_ids is not None
        return draft, ids_given

    async def _checked(self, discount_id: int, draft: DiscountDraft, check_ids: bool) -> Discount:
        errors = _title_errors(draft.title)
        code = None
        if draft.code is not None:
            try:
                code = normalize_code(draft.code)
            except Rejected as rejected:
                errors.extend(rejected.errors)
        value = self._value(draft, errors)
        product_ids, category_ids = _scope_ids(draft, errors)
        minimum = None
        if draft.minimum_subtotal is not None:
            minimum = self._amount(draft.minimum_subtotal, "minimumSubtotal", 0, errors)
        errors.extend(_date_errors(draft.starts_at, draft.ends_at))
        if draft.usage_limit is not None and not 1 <= draft.usage_limit <= USAGE_LIMIT_MAX:
            message = f"usageLimit must be 1 to {USAGE_LIMIT_MAX}"
            errors.append(UserError(UserErrorCode.INVALID, message, ("usageLimit",)))
        # The draft's lists, not the decoded ids: a list of nothing but bad ids must fail.
        if check_ids and not errors and (draft.product_ids or draft.category_ids):
            errors.extend(await self._missing_ids(draft, product_ids, category_ids))
        if errors:
            raise Rejected(errors)
        assert value is not None
        return Discount(
            id=discount_id,
            title=draft.title.strip(),
            code=code,
            value=value,
            scope=draft.scope,
            product_ids=frozenset(product_ids),
            category_ids=frozenset(category_ids),
            minimum_subtotal=minimum,
            starts_at=draft.starts_at,
            ends_at=draft.ends_at,
            usage_limit=draft.usage_limit,
            once_per_customer=draft.once_per_customer,
            active=draft.active,
        )

    def _value(self, draft: DiscountDraft, errors: list[UserError]) -> DiscountValue | None:
        kind = draft.value_type
        errors_before = len(errors)
        if kind is not DiscountKind.PERCENTAGE and draft.basis_points is not None:
            message = "basisPoints is only for a PERCENTAGE discount"
            errors.append(UserError(UserErrorCode.INVALID, message, ("basisPoints",)))
        if kind is not DiscountKind.FIXED_AMOUNT and draft.amount is not None:
            message = "amount is only for a FIXED_AMOUNT discount"
            errors.append(UserError(UserErrorCode.INVALID, message, ("amount",)))
        if kind is DiscountKind.FREE_SHIPPING and draft.scope is not DiscountScope.ORDER:
            message = "a FREE_SHIPPING discount has scope ORDER"
            errors.append(UserError(UserErrorCode.INVALID, message, ("scope",)))
        if kind is DiscountKind.PERCENTAGE:
            if draft.basis_points is None:
                message = "basisPoints is required for a PERCENTAGE discount"
                errors.append(UserError(UserErrorCode.BLANK, message, ("basisPoints",)))
            elif not 1 <= draft.basis_points <= MAX_BASIS_POINTS:
                message = f"basisPoints must be 1 to {MAX_BASIS_POINTS} (1 = 0.01%)"
                errors.append(UserError(UserErrorCode.INVALID, message, ("basisPoints",)))
            else:
                return DiscountValue.percentage(draft.basis_points)
            return None
        if kind is DiscountKind.FIXED_AMOUNT:
            if draft.amount is None:
                message = "amount is required for a FIXED_AMOUNT discount"
                errors.append(UserError(UserErrorCode.BLANK, message, ("amount",)))
                return None
            minor = self._amount(draft.amount, "amount", 1, errors)
            return None if minor is None else DiscountValue.fixed_amount(minor)
        return DiscountValue.free_shipping() if len(errors) == errors_before else None

    def _amount(self, text: str, field: str, least: int, errors: list[UserError]) -> int | None:
        """A decimal string in the store currency, `least` to PRICE_MAX minor units."""
        try:
            minor = parse_amount(text, self._currency, field=field)
        except InvalidInput as error:
            errors.append(UserError(UserErrorCode.INVALID_PRICE, error.message, (field,)))
            return None
        if not least <= minor <= PRICE_MAX:
            low = "more than 0" if least > 0 else "0 or more"
            message = f"{field} must be {low} and at most {self._money_text(PRICE_MAX)}"
            errors.append(UserError(UserErrorCode.INVALID_PRICE, message, (field,)))
            return None
        return minor

    async def _missing_ids(
        self, draft: DiscountDraft, product_ids: Sequence[int], category_ids: Sequence[int]
    ) -> list[UserError]:
        products, categories = await self._store.existing(product_ids, category_ids)
        errors: list[UserError] = []
        for asked, found, code, message, field in (
            (draft.product_ids, products, UserErrorCode.PRODUCT_NOT_FOUND, "product", "productIds"),
            (
                draft.category_ids,
                categories,
                UserErrorCode.CATEGORY_NOT_FOUND,
                "category",
                "categoryIds",
            ),
        ):
            errors.extend(
                UserError(code, f"no such {message}", (field, str(index)))
                for index, item in enumerate(asked)
                if item not in found
            )
        return errors

    def _money_text(self, minor: int) -> str:
        return Money(minor, self._currency).to_decimal_string()


def _scope_ids(draft: DiscountDraft, errors: list[UserError]) -> tuple[list[int], list[int]]:
    """The scope's ids, without repeats, when they fit the scope; a None (a global id of
    something else) is reported with the missing ones, at its index."""
    wanted = {
        DiscountScope.ORDER: (),
        DiscountScope.PRODUCTS: ("productIds",),
        DiscountScope.CATEGORIES: ("categoryIds",),
    }[draft.scope]
    found: dict[str, list[int]] = {"productIds": [], "categoryIds": []}
    for field, ids in (("productIds", draft.product_ids), ("categoryIds", draft.category_ids)):
        if field not in wanted:
            if ids:
                message = f"{field} is only for a discount with scope {_scope_of(field)}"
                errors.append(UserError(UserErrorCode.INVALID, message, (field,)))
            continue
        if not ids:
            message = f"a discount with scope {draft.scope.value} needs at least one of {field}"
            errors.append(UserError(UserErrorCode.BLANK, message, (field,)))
        elif len(ids) > SCOPE_IDS_MAX:
            message = f"{field} holds at most {SCOPE_IDS_MAX} ids"
            errors.append(UserError(UserErrorCode.INVALID, message, (field,)))
        else:
            found[field] = list(dict.fromkeys(i for i in ids if i is not None))
    return found["productIds"], found["categoryIds"]


def _scope_of(field: str) -> str:
    return "PRODUCTS" if field == "productIds" else "CATEGORIES"


def _title_errors(title: str) -> list[UserError]:
    problem = string_problem(title, TITLE_MAX)
    if problem is not None:
        code = UserErrorCode.TOO_LONG if len(title) > TITLE_MAX else UserErrorCode.INVALID
        return [UserError(code, f"title {problem}", ("title",))]
    if not title.strip():
        return [UserError(UserErrorCode.BLANK, "title is required", ("title",))]
    return []


def _date_errors(starts_at: datetime | None, ends_at: datetime | None) -> list[UserError]:
    errors = []
    for field, moment in (("startsAt", starts_at), ("endsAt", ends_at)):
        problem = None if moment is None else moment_problem(moment)
        if problem is not None:
            errors.append(UserError(UserErrorCode.INVALID, f"{field} {problem}", (field,)))
    if not errors and starts_at is not None and ends_at is not None and starts_at >= ends_at:
        message = "endsAt must be after startsAt"
        errors.append(UserError(UserErrorCode.INVALID, message, ("endsAt",)))
    return errors


def _kept(change: V | Unchanged, current: V) -> V:
    return current if isinstance(change, Unchanged) else change


def _or(value: V | None, current: V) -> V:
    return current if value is None else value


def _missing() -> Rejected:
    return Rejected.one(UserErrorCode.DISCOUNT_NOT_FOUND, "no such discount", "id")


def _code_taken() -> Rejected:
    return Rejected.one(UserErrorCode.DISCOUNT_CODE_TAKEN, "another discount has this code", "code")
