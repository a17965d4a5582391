"""Discounts: what a code or an automatic promotion takes off a cart, and why a code does
not apply. Pure rules, integer minor units, no I/O: the caller loads the candidates.

How discounts combine (`apply_discounts`):

1. Candidates are the store's automatic discounts plus the discounts of the codes the
   shopper entered; both compete under the same rules. A candidate counts only when it
   applies (`code_refusal` answers None): active, within its dates, not exhausted, its
   minimum met, and something in the cart in its scope.
2. Line discounts (scope products or categories; a category covers its descendants):
   each line takes at most one, the one worth most on that line. A percentage comes off
   the line's subtotal; a fixed amount comes off each line in scope once (not per unit),
   never more than that line's subtotal.
3. Then at most one order discount (scope whole order): the one worth most on what the
   lines cost after their line discounts. It is allocated to the lines pro rata to what
   each still costs, by the largest-remainder method, so the allocations add up exactly
   to the discount and no line goes below zero.
4. Free shipping stands apart: any free-shipping discount that applies makes shipping
   free, on top of the line and order discounts.
5. A percentage is rounded down to the minor unit (it never gives more than it says).
   Ties between discounts go to the smallest discount id; ties between remainders go to
   the line with the smallest key. The result does not depend on the order of the lines
   or of the candidates.
6. The minimum subtotal is measured on the cart's subtotal before any discount, so one
   discount never disqualifies another.
7. The total never goes below zero: no line pays less than nothing, shipping neither.

Why a code does not apply, checked in this order (the first that fails answers):
`DISCOUNT_NOT_FOUND` (no such code), `DISCOUNT_NOT_APPLICABLE` (deactivated, or not
started yet: an upcoming promotion is not "expired"), `DISCOUNT_EXPIRED` (its end has
passed; the end is exclusive, the start inclusive), `DISCOUNT_EXHAUSTED` (usage limit
reached, or once per customer and this buyer already used it), `DISCOUNT_NOT_APPLICABLE`
(nothing in the cart is in its scope), `DISCOUNT_MINIMUM_NOT_MET`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from domain.catalog import Category, Product
from domain.errors import Rejected, UserError, UserErrorCode

if TYPE_CHECKING:  # domain.carts prices with these rules: no import cycle at run time
    from domain.carts import PricedLine

CODE_MAX_LENGTH = 64
MAX_DISCOUNT_CODES = 5
MAX_BASIS_POINTS = 10_000
# Letters, digits, dash and underscore: what a code printed on a flyer is made of.
_CODE = re.compile(r"[A-Z0-9_-]+")


class DiscountKind(StrEnum):
    PERCENTAGE = "PERCENTAGE"
    FIXED_AMOUNT = "FIXED_AMOUNT"
    FREE_SHIPPING = "FREE_SHIPPING"


class DiscountScope(StrEnum):
    ORDER = "ORDER"
    PRODUCTS = "PRODUCTS"
    CATEGORIES = "CATEGORIES"


@dataclass(frozen=True, slots=True)
class DiscountValue:
    """Basis points (1..10000) for a percentage, minor units (> 0) of the store currency
    for a fixed amount, 0 for free shipping."""

    kind: DiscountKind
    amount: int = 0

    def __post_init__(self) -> None:
        if self.kind is DiscountKind.PERCENTAGE and not 1 <= self.amount <= MAX_BASIS_POINTS:
            raise ValueError("a percentage is 1..10000 basis points")
        if self.kind is DiscountKind.FIXED_AMOUNT and self.amount <= 0:
            raise ValueError("a fixed amount is more than zero")
        if self.kind is DiscountKind.FREE_SHIPPING and self.amount != 0:
            raise ValueError("free shipping carries no amount")

    @classmethod
    def percentage(cls, basis_points: int) -> DiscountValue:
        return cls(DiscountKind.PERCENTAGE, basis_points)

    @classmethod
    def fixed_amount(cls, minor_units: int) -> DiscountValue:
        return cls(DiscountKind.FIXED_AMOUNT, minor_units)

    @classmethod
    def free_shipping(cls) -> DiscountValue:
        return cls(DiscountKind.FREE_SHIPPING)

    def off(self, amount: int) -> int:
        """What this value takes off `amount` (never more than `amount`)."""
        if self.kind is DiscountKind.PERCENTAGE:
            return amount * self.amount // MAX_BASIS_POINTS
        if self.kind is DiscountKind.FIXED_AMOUNT:
            return min(self.amount, amount)
        return 0


@dataclass(frozen=True, slots=True)
class Discount:
    id: int
    title: str
    code: str | None  # canonical (normalize_code); None for an automatic discount
    value: DiscountValue
    scope: DiscountScope = DiscountScope.ORDER
    product_ids: frozenset[int] = frozenset()
    category_ids: frozenset[int] = frozenset()
    minimum_subtotal: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    times_used: int = 0
    once_per_customer: bool = False
    active: bool = True

    def __post_init__(self) -> None:
        if self.value.kind is DiscountKind.FREE_SHIPPING and self.scope is not DiscountScope.ORDER:
            raise ValueError("free shipping applies to the whole order")

    @property
    def automatic(self) -> bool:
        return self.code is None

    @property
    def line_scoped(self) -> bool:
        return self.scope is not DiscountScope.ORDER

    def covers(self, line: DiscountableLine) -> bool:
        """Whether `line` is in this discount's scope."""
        if self.scope is DiscountScope.PRODUCTS:
            return line.product_id in self.product_ids
        if self.scope is DiscountScope.CATEGORIES:
            return not self.category_ids.isdisjoint(line.category_ids)
        return True


@dataclass(frozen=True, slots=True)
class DiscountableLine:
    """One cart line as the rules see it. `key` identifies the line (its variant id);
    `category_ids` holds the product's category and all its ancestors
    (`category_lineage`), so a discount on a category covers its descendants."""

    key: int
    product_id: int
    category_ids: frozenset[int]
    subtotal: int


@dataclass(frozen=True, slots=True)
class DiscountAllocation:
    discount_id: int
    title: str
    code: str | None
    amount: int


@dataclass(frozen=True, slots=True)
class CodeApplicability:
    code: str
    applicable: bool
    refusal: UserErrorCode | None
    discount_id: int | None


@dataclass(frozen=True, slots=True)
class DiscountResult:
    # Per line key, in the order the discounts apply: its line discount, then its share of
    # the order discount. Lines without a discount have no entry.
    line_allocations: dict[int, tuple[DiscountAllocation, ...]]
    # The order discount (its whole amount), if one applied.
    order_allocations: tuple[DiscountAllocation, ...]
    shipping_allocation: DiscountAllocation | None
    merchandise_discount: int  # line discounts + the order discount
    shipping_discount: int
    codes: tuple[CodeApplicability, ...]  # one per distinct entered code, in entry order
    applied_discount_ids: frozenset[int]

    @property
    def free_shipping(self) -> bool:
        return self.shipping_allocation is not None

    @property
    def total_discount(self) -> int:
        return self.merchandise_discount + self.shipping_discount

    def line_discount(self, key: int) -> int:
        return sum(a.amount for a in self.line_allocations.get(key, ()))

    @property
    def all_allocations(self) -> tuple[DiscountAllocation, ...]:
        """Every allocation: each line's (in line order), then shipping's. They add up to
        `total_discount`."""
        found = [a for line in self.line_allocations.values() for a in line]
        if self.shipping_allocation is not None:
            found.append(self.shipping_allocation)
        return tuple(found)


NO_DISCOUNTS = DiscountResult({}, (), None, 0, 0, (), frozenset())


@dataclass(frozen=True, slots=True)
class DiscountContext:
    """What pricing needs to apply discounts to a cart: the candidates (automatic ones in
    force and those of the entered codes), the categories of the cart's products (for
    category scopes), and the discounts this buyer already used (once per customer)."""

    candidates: Sequence[Discount]
    categories: Mapping[int, Category]
    used_by_buyer: Collection[int]
    now: datetime


# -- codes --------------------------------------------------------------------------------


def canonical_code(raw: str) -> str | None:
    """The one form a code is stored and compared in (trimmed, upper case), or None when
    `raw` cannot be a code at all."""
    code = raw.strip()
    if not code.isascii() or len(code) > CODE_MAX_LENGTH:
        return None  # checked before upper(): "\u0131".upper() (a dotless i) is an ASCII "I"
    code = code.upper()
    return code if _CODE.fullmatch(code) else None


def normalize_code(raw: str, field: str = "code") -> str:
    """`canonical_code`, refused with a reason when `raw` is not one."""
    if not raw.strip():
        raise Rejected.one(UserErrorCode.BLANK, "a discount code is required", field)
    if len(raw.strip()) > CODE_MAX_LENGTH:
        message = f"a discount code has at most {CODE_MAX_LENGTH} characters"
        raise Rejected.one(UserErrorCode.TOO_LONG, message, field)
    code = canonical_code(raw)
    if code is None:
        message = "a discount code holds only letters, digits, dashes and underscores"
        raise Rejected.one(UserErrorCode.INVALID, message, field)
    return code


def normalize_codes(raws: Sequence[str], field: str = "discountCodes") -> tuple[str, ...]:
    """What a shopper entered, canonical and without repeats, at most 5 codes. A string that
    cannot be a code (blank, too long, other characters) refuses the list, with an error at
    its index: it is never stored or looked up."""
    if len(raws) > MAX_DISCOUNT_CODES:
        message = f"a cart takes at most {MAX_DISCOUNT_CODES} discount codes"
        raise Rejected.one(UserErrorCode.INVALID, message, field)
    codes: list[str] = []
    errors: list[UserError] = []
    for index, raw in enumerate(raws):
        try:
            code = normalize_code(raw, field)
        except Rejected as rejected:
            errors.extend(
                UserError(e.code, e.message, (field, str(index))) for e in rejected.errors
            )
            continue
        if code not in codes:
            codes.append(code)
    if errors:
        raise Rejected(errors)
    return tuple(codes)


def category_lineage(path: str) -> frozenset[int]:
    """The category ids in a materialised path ("/1/7/" -> {1, 7}): a category and its
    ancestors, which is what `DiscountableLine.category_ids` holds."""
    return frozenset(int(part) for part in path.split("/") if part.isdigit())


def discountable_lines(
    priced: Sequence[PricedLine],
    products: Mapping[int, Product],
    categories: Mapping[int, Category],
) -> list[DiscountableLine]:
    """A priced cart's lines as the rules see them. `categories` holds the categories of
    the lines' products (their paths name the ancestors; one look-up, no walk up the tree).
    A line no longer for sale costs nothing, so no discount reaches it."""
    lines = []
    for item in priced:
        variant = item.variant
        product = products.get(variant.product_id) if variant is not None else None
        category = categories.get(product.category_id or 0) if product is not None else None
        lineage = category_lineage(category.path) if category is not None else frozenset()
        product_id = product.id if product is not None else 0
        lines.append(DiscountableLine(item.line.variant_id, product_id, lineage, item.subtotal))
    return lines


# -- applicability ------------------------------------------------------------------------


def code_refusal(
    discount: Discount | None,
    lines: Sequence[DiscountableLine],
    now: datetime,
    used_by_buyer: Collection[int] = frozenset(),
) -> UserErrorCode | None:
    """Why `discount` does not apply to these lines now, or None when it does.
    `used_by_buyer` holds the ids of discounts this buyer (the signed-in customer, or the
    normalised email of a guest) already used on an order."""
    if discount is None:
        return UserErrorCode.DISCOUNT_NOT_FOUND
    if not discount.active or (discount.starts_at is not None and now < discount.starts_at):
        return UserErrorCode.DISCOUNT_NOT_APPLICABLE
    if discount.ends_at is not None and now >= discount.ends_at:
        return UserErrorCode.DISCOUNT_EXPIRED
    if discount.usage_limit is not None and discount.times_used >= discount.usage_limit:
        return UserErrorCode.DISCOUNT_EXHAUSTED
    if discount.once_per_customer and discount.id in used_by_buyer:
        return UserErrorCode.DISCOUNT_EXHAUSTED
    if not any(line.subtotal > 0 and discount.covers(line) for line in lines):
        return UserErrorCode.DISCOUNT_NOT_APPLICABLE
    subtotal = sum(line.subtotal for line in lines)
    if discount.minimum_subtotal is not None and subtotal < discount.minimum_subtotal:
        return UserErrorCode.DISCOUNT_MINIMUM_NOT_MET
    return None


REFUSAL_MESSAGES = {
    UserErrorCode.DISCOUNT_NOT_FOUND: "no discount has this code",
    UserErrorCode.DISCOUNT_NOT_APPLICABLE: "this code does not apply to this cart",
    UserErrorCode.DISCOUNT_EXPIRED: "this code has expired",
    UserErrorCode.DISCOUNT_EXHAUSTED: "this code has been used up",
    UserErrorCode.DISCOUNT_MINIMUM_NOT_MET: "the cart does not reach this code's minimum",
}


def code_errors(
    codes: Iterable[CodeApplicability], field: str = "discountCodes"
) -> list[UserError]:
    """A userError per entered code that does not apply, at its index in the list."""
    return [
        UserError(c.refusal, REFUSAL_MESSAGES[c.refusal], (field, str(index)))
        for index, c in enumerate(codes)
        if c.refusal is not None
    ]


# -- combination and allocation -----------------------------------------------------------


def apply_discounts(
    lines: Sequence[DiscountableLine],
    shipping: int,
    candidates: Iterable[Discount],
    entered_codes: Sequence[str],
    now: datetime,
    used_by_buyer: Collection[int] = frozenset(),
) -> DiscountResult:
    """What the candidates take off these lines and this shipping cost, under the rules
    of this module's docstring. `candidates` holds the automatic discounts in force and the
    discounts found for `entered_codes` (others are ignored: a code discount counts only
    when its code was entered); `entered_codes` are canonical (`normalize_codes`)."""
    if len({line.key for line in lines}) != len(lines):
        raise ValueError("each line key appears once")
    by_id = sorted(candidates, key=lambda d: d.id)
    by_code: dict[str, Discount] = {}
    for candidate in by_id:
        if candidate.code is not None:
            by_code.setdefault(candidate.code, candidate)  # codes are unique; else smallest id
    automatic = [d for d in by_id if d.automatic]
    codes: list[CodeApplicability] = []
    in_force: dict[int, Discount] = {
        d.id: d for d in automatic if code_refusal(d, lines, now, used_by_buyer) is None
    }
    for code in dict.fromkeys(entered_codes):
        discount = by_code.get(code)
        refusal = code_refusal(discount, lines, now, used_by_buyer)
        found = None if discount is None else discount.id
        codes.append(CodeApplicability(code, refusal is None, refusal, found))
        if discount is not None and refusal is None:
            in_force[discount.id] = discount
    ranked = sorted(in_force.values(), key=lambda d: d.id)

    allocations: dict[int, list[DiscountAllocation]] = {}
    remaining = {line.key: line.subtotal for line in lines}
    for line in lines:
        best = _best((d for d in ranked if d.line_scoped and d.covers(line)), line.subtotal)
        if best is not None:
            discount, amount = best
            allocations[line.key] = [_allocation(discount, amount)]
            remaining[line.key] -= amount

    order_allocations: tuple[DiscountAllocation, ...] = ()
    base = sum(remaining.values())
    order = _best((d for d in ranked if not d.line_scoped), base)
    if order is not None:
        discount, amount = order
        order_allocations = (_allocation(discount, amount),)
        for key, share in _pro_rata(amount, remaining).items():
            if share:
                allocations.setdefault(key, []).append(_allocation(discount, share))

    free = next((d for d in ranked if d.value.kind is DiscountKind.FREE_SHIPPING), None)
    shipping_allocation = None if free is None else _allocation(free, shipping)
    applied = {a.discount_id for line in allocations.values() for a in line}
    applied.update(a.discount_id for a in order_allocations)
    if free is not None:
        applied.add(free.id)
    return DiscountResult(
        line_allocations={  # in line order
            line.key: tuple(allocations[line.key]) for line in lines if line.key in allocations
        },
        order_allocations=order_allocations,
        shipping_allocation=shipping_allocation,
        merchandise_discount=sum(a.amount for line in allocations.values() for a in line),
        shipping_discount=0 if shipping_allocation is None else shipping,
        codes=tuple(codes),
        applied_discount_ids=frozenset(applied),
    )


def _best(eligible: Iterable[Discount], amount: int) -> tuple[Discount, int] | None:
    """The discount worth most on `amount` (ties: the first, the smallest id, as they come
    sorted by id), or None when none takes anything off."""
    best: tuple[Discount, int] | None = None
    for discount in eligible:
        if discount.value.kind is DiscountKind.FREE_SHIPPING:
            continue
        off = discount.value.off(amount)
        if off > 0 and (best is None or off > best[1]):
            best = (discount, off)
    return best


def _pro_rata(amount: int, weights: dict[int, int]) -> dict[int, int]:
    """`amount` split in proportion to `weights` (largest remainder; ties to the smallest
    key): the shares add up to `amount` and none exceeds its weight, given
    amount <= sum(weights)."""
    total = sum(weights.values())
    if total == 0:
        return {}
    shares = {key: amount * weight // total for key, weight in weights.items()}
    left = amount - sum(shares.values())
    by_remainder = sorted(weights, key=lambda key: (-(amount * weights[key] % total), key))
    for key in by_remainder[:left]:
        shares[key] += 1
    return shares


def _allocation(discount: Discount, amount: int) -> DiscountAllocation:
    return DiscountAllocation(discount.id, discount.title, discount.code, amount)
