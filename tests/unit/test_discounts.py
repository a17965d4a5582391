"""Discount rules without I/O: codes, why a code does not apply, how discounts combine and
how an order discount is spread over the lines."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from domain.carts import Cart, CartLine, PricingRules, price_cart
from domain.catalog import Category, Product, ProductStatus, RatingSummary, Variant
from domain.discount_finder import DiscountFinder
from domain.discounts import (
    Discount,
    DiscountableLine,
    DiscountAllocation,
    DiscountContext,
    DiscountKind,
    DiscountResult,
    DiscountScope,
    DiscountValue,
    apply_discounts,
    canonical_code,
    category_lineage,
    code_errors,
    code_refusal,
    discountable_lines,
    normalize_code,
    normalize_codes,
)
from domain.errors import Rejected, UserErrorCode

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
SHIPPING = 599


def line(
    key: int, subtotal: int, product_id: int | None = None, path: str = ""
) -> DiscountableLine:
    return DiscountableLine(key, product_id or key, category_lineage(path), subtotal)


def percent(discount_id: int, basis_points: int, **fields: Any) -> Discount:
    value = DiscountValue.percentage(basis_points)
    return replace(Discount(discount_id, f"{basis_points} bp off", None, value), **fields)


def fixed(discount_id: int, amount: int, **fields: Any) -> Discount:
    value = DiscountValue.fixed_amount(amount)
    return replace(Discount(discount_id, f"{amount} off", None, value), **fields)


def free_shipping(discount_id: int, **fields: Any) -> Discount:
    value = DiscountValue.free_shipping()
    return replace(Discount(discount_id, "Free shipping", None, value), **fields)


def on_products(*ids: int) -> dict[str, Any]:
    return {"scope": DiscountScope.PRODUCTS, "product_ids": frozenset(ids)}


def on_categories(*ids: int) -> dict[str, Any]:
    return {"scope": DiscountScope.CATEGORIES, "category_ids": frozenset(ids)}


def refusal_codes(raws: list[str]) -> list[tuple[UserErrorCode, tuple[str, ...]]]:
    with pytest.raises(Rejected) as refused:
        normalize_codes(raws)
    return [(e.code, e.field) for e in refused.value.errors]


# -- codes --------------------------------------------------------------------------------


def test_a_code_has_one_canonical_form_whatever_the_case_and_surrounding_spaces() -> None:
    assert normalize_code("  welcome10 ") == "WELCOME10"
    assert normalize_code("Summer_Sale-2026") == "SUMMER_SALE-2026"
    assert canonical_code("WeLcOmE10") == canonical_code("welcome10") == "WELCOME10"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", UserErrorCode.BLANK),
        ("   ", UserErrorCode.BLANK),
        ("A" * 65, UserErrorCode.TOO_LONG),
        ("WEL COME", UserErrorCode.INVALID),
        ("WELCOME\x00", UserErrorCode.INVALID),
        ("10%OFF", UserErrorCode.INVALID),
        ("caf\u00e9", UserErrorCode.INVALID),
        # "\u0131".upper() is "I": a lookalike must not become a real code.
        ("\u0131stanbul", UserErrorCode.INVALID),
        ("\ud800", UserErrorCode.INVALID),
    ],
)
def test_junk_is_refused_with_a_reason(raw: str, code: UserErrorCode) -> None:
    with pytest.raises(Rejected) as refused:
        normalize_code(raw, "discountCodes")
    assert [(e.code, e.field) for e in refused.value.errors] == [(code, ("discountCodes",))]
    assert canonical_code(raw) is None


def test_the_longest_code_is_64_characters() -> None:
    assert normalize_code("A" * 64) == "A" * 64


def test_entered_codes_lose_repeats_in_any_case_and_keep_their_order() -> None:
    assert normalize_codes(["b", "A", "B ", "a"]) == ("B", "A")
    assert normalize_codes([]) == ()


def test_a_cart_takes_at_most_five_codes() -> None:
    assert len(normalize_codes([f"C{i}" for i in range(5)])) == 5
    assert refusal_codes([f"C{i}" for i in range(6)]) == [
        (UserErrorCode.INVALID, ("discountCodes",))
    ]


def test_each_junk_code_is_refused_at_its_index() -> None:
    assert refusal_codes(["OK", "NOT OK", "", "FINE"]) == [
        (UserErrorCode.INVALID, ("discountCodes", "1")),
        (UserErrorCode.BLANK, ("discountCodes", "2")),
    ]


def test_a_category_path_is_the_category_and_its_ancestors() -> None:
    assert category_lineage("/1/7/12/") == {1, 7, 12}
    assert category_lineage("") == frozenset()


def test_a_priced_cart_s_lines_carry_their_product_and_category_lineage() -> None:
    # Given a cart of a shoe in Sale > Shoes, a hat with no category, and a variant gone.
    shoe = Variant(11, 1, "SHOE", "Default", (), 4000, None, "USD", 0)
    hat = Variant(12, 2, "HAT", "Default", (), 1500, None, "USD", 0)
    products = {1: _product(1, category_id=7), 2: _product(2, category_id=None)}
    categories = {7: Category(7, 3, "shoes", "Shoes", "", "/3/7/", 0)}
    cart = Cart(
        "c", None, None, None, None, (CartLine(11, 2), CartLine(12, 1), CartLine(13, 1)), NOW, NOW
    )
    priced = price_cart(cart, {11: shoe, 12: hat}, products, {}, PricingRules("USD", 599, 5000))
    # When the rules read it, then each line has its product, its categories and what it costs.
    assert discountable_lines(priced.lines, products, categories) == [
        DiscountableLine(11, 1, frozenset({3, 7}), 8000),
        DiscountableLine(12, 2, frozenset(), 1500),
        DiscountableLine(13, 0, frozenset(), 0),
    ]


def _product(product_id: int, category_id: int | None) -> Product:
    return Product(
        product_id,
        f"p{product_id}",
        "P",
        "",
        "B",
        category_id,
        ProductStatus.ACTIVE,
        (),
        0,
        0,
        "USD",
        NOW,
        NOW,
        RatingSummary(product_id, 0.0, 0),
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: DiscountValue.percentage(0),
        lambda: DiscountValue.percentage(10_001),
        lambda: DiscountValue.fixed_amount(0),
        lambda: DiscountValue.fixed_amount(-5),
        lambda: free_shipping(1, **on_products(1)),
    ],
)
def test_impossible_discounts_cannot_be_built(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_a_discount_without_a_code_is_automatic() -> None:
    assert percent(1, 1000).automatic
    assert not percent(1, 1000, code="SAVE").automatic


# -- why a code does not apply ------------------------------------------------------------

CART = [line(1, 3000, path="/1/2/"), line(2, 2000, path="/5/")]


@pytest.mark.parametrize(
    ("discount", "refusal"),
    [
        (None, UserErrorCode.DISCOUNT_NOT_FOUND),
        (percent(1, 1000, code="X"), None),
        (percent(1, 1000, code="X", active=False), UserErrorCode.DISCOUNT_NOT_APPLICABLE),
        (percent(1, 1000, code="X", starts_at=NOW + HOUR), UserErrorCode.DISCOUNT_NOT_APPLICABLE),
        (percent(1, 1000, code="X", starts_at=NOW), None),
        (percent(1, 1000, code="X", ends_at=NOW), UserErrorCode.DISCOUNT_EXPIRED),
        (percent(1, 1000, code="X", ends_at=NOW + HOUR), None),
        (
            percent(1, 1000, code="X", usage_limit=10, times_used=10),
            UserErrorCode.DISCOUNT_EXHAUSTED,
        ),
        (percent(1, 1000, code="X", usage_limit=10, times_used=9), None),
        (percent(1, 1000, code="X", usage_limit=0), UserErrorCode.DISCOUNT_EXHAUSTED),
        (percent(1, 1000, code="X", **on_products(9)), UserErrorCode.DISCOUNT_NOT_APPLICABLE),
        (percent(1, 1000, code="X", **on_products(2)), None),
        (percent(1, 1000, code="X", **on_categories(9)), UserErrorCode.DISCOUNT_NOT_APPLICABLE),
        (percent(1, 1000, code="X", **on_categories(1)), None),  # an ancestor of line 1's
        (percent(1, 1000, code="X", minimum_subtotal=5001), UserErrorCode.DISCOUNT_MINIMUM_NOT_MET),
        (percent(1, 1000, code="X", minimum_subtotal=5000), None),
        (free_shipping(1, code="X"), None),
    ],
)
def test_each_reason_a_code_does_not_apply(
    discount: Discount | None, refusal: UserErrorCode | None
) -> None:
    assert code_refusal(discount, CART, NOW) is refusal


def test_once_per_customer_refuses_a_buyer_who_used_it_and_no_one_else() -> None:
    once = percent(7, 1000, code="ONCE", once_per_customer=True)
    assert code_refusal(once, CART, NOW, used_by_buyer={7}) is UserErrorCode.DISCOUNT_EXHAUSTED
    assert code_refusal(once, CART, NOW, used_by_buyer={3}) is None
    # Without the flag, having used it before does not matter.
    again = percent(7, 1000, code="AGAIN")
    assert code_refusal(again, CART, NOW, used_by_buyer={7}) is None


@pytest.mark.parametrize(
    ("discount", "refusal"),
    [
        # Deactivated beats everything after it.
        (
            percent(1, 1000, code="X", active=False, ends_at=NOW),
            UserErrorCode.DISCOUNT_NOT_APPLICABLE,
        ),
        (
            percent(1, 1000, code="X", ends_at=NOW, usage_limit=1, times_used=1),
            UserErrorCode.DISCOUNT_EXPIRED,
        ),
        (
            percent(1, 1000, code="X", usage_limit=1, times_used=1, **on_products(9)),
            UserErrorCode.DISCOUNT_EXHAUSTED,
        ),
        # Nothing in scope says more than a minimum the cart does not reach.
        (
            percent(1, 1000, code="X", minimum_subtotal=10**6, **on_products(9)),
            UserErrorCode.DISCOUNT_NOT_APPLICABLE,
        ),
    ],
)
def test_the_first_reason_in_the_documented_order_answers(
    discount: Discount, refusal: UserErrorCode
) -> None:
    assert code_refusal(discount, CART, NOW) is refusal


def test_a_line_that_costs_nothing_puts_nothing_in_scope() -> None:
    # An unavailable variant is priced at 0 (domain/carts.price_cart).
    cart = [line(1, 0), line(2, 2000)]
    assert (
        code_refusal(percent(1, 1000, **on_products(1)), cart, NOW)
        is UserErrorCode.DISCOUNT_NOT_APPLICABLE
    )
    assert (
        code_refusal(percent(1, 1000), [line(1, 0)], NOW) is UserErrorCode.DISCOUNT_NOT_APPLICABLE
    )
    assert code_refusal(percent(1, 1000), [], NOW) is UserErrorCode.DISCOUNT_NOT_APPLICABLE


def test_refused_codes_become_user_errors_at_their_index() -> None:
    result = apply_discounts(
        CART, SHIPPING, [percent(1, 1000, code="OK")], ["NOPE", "OK", "OLD"], NOW
    )
    assert [(e.code, e.field) for e in code_errors(result.codes)] == [
        (UserErrorCode.DISCOUNT_NOT_FOUND, ("discountCodes", "0")),
        (UserErrorCode.DISCOUNT_NOT_FOUND, ("discountCodes", "2")),
    ]
    assert all(e.message for e in code_errors(result.codes))


# -- combination --------------------------------------------------------------------------


def amounts(result: DiscountResult) -> dict[int, list[tuple[int, int]]]:
    """Per line key, (discount id, amount) in the order they apply."""
    allocations = result.line_allocations
    return {key: [(a.discount_id, a.amount) for a in found] for key, found in allocations.items()}


def test_no_discount_takes_nothing_off() -> None:
    result = apply_discounts(CART, SHIPPING, [], [], NOW)
    assert result.line_allocations == {}
    assert result.order_allocations == ()
    assert not result.free_shipping
    assert result.total_discount == 0
    assert result.codes == ()
    assert result.applied_discount_ids == frozenset()


def test_an_entered_code_reports_whether_it_applies() -> None:
    result = apply_discounts(CART, SHIPPING, [percent(1, 1000, code="TEN")], ["TEN"], NOW)
    assert [(c.code, c.applicable, c.refusal, c.discount_id) for c in result.codes] == [
        ("TEN", True, None, 1)
    ]
    assert result.merchandise_discount == 500


def test_a_code_discount_counts_only_when_its_code_was_entered() -> None:
    result = apply_discounts(CART, SHIPPING, [percent(1, 1000, code="TEN")], [], NOW)
    assert result.total_discount == 0


def test_a_line_takes_the_best_of_its_line_discounts_and_only_that_one() -> None:
    cart = [line(1, 1000), line(2, 10_000)]
    ten_percent = percent(1, 1000, **on_products(1, 2))
    five_off = fixed(2, 500, **on_products(1, 2))
    result = apply_discounts(cart, SHIPPING, [ten_percent, five_off], [], NOW)
    # 10% of 10.00 is 1.00 < 5.00 off; 10% of 100.00 is 10.00 > 5.00 off.
    assert amounts(result) == {1: [(2, 500)], 2: [(1, 1000)]}
    assert result.merchandise_discount == 1500
    assert result.applied_discount_ids == {1, 2}


def test_a_category_discount_covers_the_category_s_descendants_only() -> None:
    cart = [line(1, 1000, path="/1/"), line(2, 1000, path="/1/4/9/"), line(3, 1000, path="/2/")]
    result = apply_discounts(cart, SHIPPING, [percent(1, 2000, **on_categories(1))], [], NOW)
    assert amounts(result) == {1: [(1, 200)], 2: [(1, 200)]}


def test_a_fixed_line_discount_comes_off_each_line_once_never_below_zero() -> None:
    cart = [line(1, 300, product_id=5), line(2, 5000, product_id=5), line(3, 5000, product_id=6)]
    result = apply_discounts(cart, SHIPPING, [fixed(1, 1000, **on_products(5))], [], NOW)
    assert amounts(result) == {1: [(1, 300)], 2: [(1, 1000)]}


def test_at_most_one_order_discount_the_best() -> None:
    cart = [line(1, 10_000)]
    candidates = [percent(1, 1000), fixed(2, 1500), percent(3, 1200)]
    result = apply_discounts(cart, SHIPPING, candidates, [], NOW)
    assert [(a.discount_id, a.amount) for a in result.order_allocations] == [(2, 1500)]
    assert result.merchandise_discount == 1500


def test_the_order_discount_is_computed_on_what_the_line_discounts_leave() -> None:
    cart = [line(1, 6000), line(2, 4000)]
    line_sale = percent(1, 5000, **on_products(1))  # 30.00 off line 1
    order_sale = percent(2, 1000)  # 10% of the 70.00 left
    result = apply_discounts(cart, SHIPPING, [line_sale, order_sale], [], NOW)
    assert [(a.discount_id, a.amount) for a in result.order_allocations] == [(2, 700)]
    # Pro rata to what each line still costs: 30.00 and 40.00.
    assert amounts(result) == {1: [(1, 3000), (2, 300)], 2: [(2, 400)]}
    assert result.merchandise_discount == 3700


def test_a_fixed_order_discount_never_exceeds_what_is_left() -> None:
    cart = [line(1, 1000), line(2, 500)]
    result = apply_discounts(
        cart, SHIPPING, [percent(1, 10_000, **on_products(1)), fixed(2, 9999)], [], NOW
    )
    assert amounts(result) == {1: [(1, 1000)], 2: [(2, 500)]}
    assert result.merchandise_discount == 1500  # the whole subtotal, not more


def test_free_shipping_stands_apart_and_combines_with_the_others() -> None:
    cart = [line(1, 6000), line(2, 4000)]
    candidates = [free_shipping(3, code="SHIP"), percent(1, 1000, **on_products(1)), fixed(2, 1000)]
    result = apply_discounts(cart, SHIPPING, candidates, ["SHIP"], NOW)
    assert result.free_shipping
    assert result.shipping_allocation == DiscountAllocation(3, "Free shipping", "SHIP", SHIPPING)
    assert result.shipping_discount == SHIPPING
    assert result.merchandise_discount == 600 + 1000
    assert result.total_discount == 600 + 1000 + SHIPPING
    assert result.applied_discount_ids == {1, 2, 3}


def test_free_shipping_when_shipping_is_already_free_takes_nothing_more() -> None:
    result = apply_discounts(CART, 0, [free_shipping(1)], [], NOW)
    assert result.free_shipping
    assert result.shipping_discount == 0


def test_free_shipping_with_a_minimum_waits_for_the_minimum() -> None:
    result = apply_discounts(CART, SHIPPING, [free_shipping(1, minimum_subtotal=7500)], [], NOW)
    assert not result.free_shipping
    assert result.shipping_discount == 0


def test_automatic_and_code_discounts_compete_under_the_same_rules() -> None:
    cart = [line(1, 10_000)]
    automatic = percent(1, 1000)
    code = percent(2, 1500, code="FIFTEEN")
    won = apply_discounts(cart, SHIPPING, [automatic, code], ["FIFTEEN"], NOW)
    assert [a.discount_id for a in won.order_allocations] == [2]
    better_automatic = percent(3, 2000)
    lost = apply_discounts(cart, SHIPPING, [better_automatic, code], ["FIFTEEN"], NOW)
    assert [a.discount_id for a in lost.order_allocations] == [3]
    # The code still applies to the cart; a better discount simply took its place.
    assert [(c.applicable, c.refusal) for c in lost.codes] == [(True, None)]
    assert lost.applied_discount_ids == {3}


def test_ties_go_to_the_smallest_discount_id_whatever_the_order() -> None:
    cart = [line(1, 10_000)]
    for candidates in ([fixed(5, 1000), percent(4, 1000)], [percent(4, 1000), fixed(5, 1000)]):
        result = apply_discounts(cart, SHIPPING, candidates, [], NOW)
        assert [a.discount_id for a in result.order_allocations] == [4]
    for candidates in ([free_shipping(9), free_shipping(8)], [free_shipping(8), free_shipping(9)]):
        result = apply_discounts(cart, SHIPPING, candidates, [], NOW)
        assert result.shipping_allocation is not None
        assert result.shipping_allocation.discount_id == 8


def test_the_minimum_is_measured_before_any_discount() -> None:
    cart = [line(1, 5000)]
    line_sale = percent(1, 5000, **on_products(1))  # leaves 25.00
    order_sale = fixed(2, 500, minimum_subtotal=5000)
    result = apply_discounts(cart, SHIPPING, [line_sale, order_sale], [], NOW)
    assert amounts(result) == {1: [(1, 2500), (2, 500)]}


def test_inactive_expired_exhausted_or_unstarted_automatic_discounts_do_nothing() -> None:
    candidates = [
        percent(1, 5000, active=False),
        percent(2, 5000, ends_at=NOW - HOUR),
        percent(3, 5000, starts_at=NOW + HOUR),
        percent(4, 5000, usage_limit=3, times_used=3),
        percent(5, 5000, once_per_customer=True),
    ]
    result = apply_discounts(CART, SHIPPING, candidates, [], NOW, used_by_buyer={5})
    assert result.total_discount == 0
    assert result.codes == ()  # automatic discounts are never reported as codes


def test_a_percentage_rounds_down_to_the_minor_unit() -> None:
    # 15% of 0.99 is 0.1485: 0.14, never 0.15.
    result = apply_discounts([line(1, 99)], SHIPPING, [percent(1, 1500)], [], NOW)
    assert result.merchandise_discount == 14
    # 0.01% of 99.99 is 0.009999: nothing, so nothing is allocated at all.
    nothing = apply_discounts([line(1, 9999)], SHIPPING, [percent(1, 1)], [], NOW)
    assert nothing.order_allocations == ()
    assert nothing.line_allocations == {}


def test_the_order_discount_splits_by_largest_remainder_ties_to_the_smallest_key() -> None:
    cart = [line(3, 100), line(1, 100), line(2, 100)]
    result = apply_discounts(cart, SHIPPING, [fixed(1, 10)], [], NOW)
    assert amounts(result) == {3: [(1, 3)], 1: [(1, 4)], 2: [(1, 3)]}
    uneven = apply_discounts(
        [line(1, 100), line(2, 200), line(3, 700)], SHIPPING, [fixed(1, 9)], [], NOW
    )
    # Exact shares 0.9, 1.8, 6.3: floors 0, 1, 6 and the two leftover units go to 0.9 and 0.8.
    assert amounts(uneven) == {1: [(1, 1)], 2: [(1, 2)], 3: [(1, 6)]}


def test_lines_that_cost_nothing_get_no_allocation() -> None:
    result = apply_discounts([line(1, 0), line(2, 1000)], SHIPPING, [fixed(1, 300)], [], NOW)
    assert amounts(result) == {2: [(1, 300)]}


def test_an_entered_code_is_reported_once_even_when_repeated() -> None:
    result = apply_discounts(CART, SHIPPING, [percent(1, 1000, code="TEN")], ["TEN", "TEN"], NOW)
    assert [c.code for c in result.codes] == ["TEN"]


def test_each_line_key_appears_once() -> None:
    with pytest.raises(ValueError):
        apply_discounts([line(1, 100), line(1, 200)], SHIPPING, [], [], NOW)


# -- properties ---------------------------------------------------------------------------

CODES = ("A", "B", "C")
PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def carts(draw: st.DrawFn) -> list[DiscountableLine]:
    keys = draw(st.lists(st.integers(1, 40), max_size=12, unique=True))
    amounts = st.one_of(st.integers(0, 10_000), st.integers(0, 10**9))
    return [
        DiscountableLine(
            key,
            draw(st.integers(1, 5)),
            draw(st.frozensets(st.integers(1, 5), max_size=3)),
            draw(amounts),
        )
        for key in keys
    ]


@st.composite
def discounts(draw: st.DrawFn, discount_id: int) -> Discount:
    value = draw(
        st.one_of(
            st.integers(1, 10_000).map(DiscountValue.percentage),
            st.integers(1, 10**7).map(DiscountValue.fixed_amount),
            st.just(DiscountValue.free_shipping()),
        )
    )
    scope = DiscountScope.ORDER
    if value.kind is not DiscountKind.FREE_SHIPPING:
        scope = draw(st.sampled_from(DiscountScope))
    window = st.none() | st.integers(-3, 3).map(lambda hours: NOW + hours * HOUR)
    limit = draw(st.none() | st.integers(0, 3))
    return Discount(
        discount_id,
        f"discount {discount_id}",
        draw(st.none() | st.sampled_from(CODES)),
        value,
        scope,
        draw(st.frozensets(st.integers(1, 5), max_size=3)),
        draw(st.frozensets(st.integers(1, 5), max_size=3)),
        draw(st.none() | st.integers(0, 50_000)),
        draw(window),
        draw(window),
        limit,
        draw(st.integers(0, 3)),
        draw(st.booleans()),
        draw(st.booleans() | st.just(True)),
    )


@st.composite
def candidate_lists(draw: st.DrawFn) -> list[Discount]:
    ids = draw(st.lists(st.integers(1, 30), max_size=8, unique=True))
    return [draw(discounts(discount_id)) for discount_id in ids]


SCENARIO = (
    carts(),
    st.integers(0, 2000),
    candidate_lists(),
    st.lists(st.sampled_from((*CODES, "ZZZ")), max_size=4, unique=True),
    st.frozensets(st.integers(1, 30), max_size=5),
)


@PROPERTIES
@given(*SCENARIO)
def test_allocations_add_up_exactly_and_no_line_goes_below_zero(
    cart: list[DiscountableLine],
    shipping: int,
    candidates: list[Discount],
    entered: list[str],
    used: frozenset[int],
) -> None:
    result = apply_discounts(cart, shipping, candidates, entered, NOW, used)
    every = [a for found in result.line_allocations.values() for a in found]
    assert sum(a.amount for a in every) == result.merchandise_discount
    assert all(a.amount > 0 for a in every)
    for item in cart:
        assert 0 <= result.line_discount(item.key) <= item.subtotal
    subtotal = sum(item.subtotal for item in cart)
    assert 0 <= result.merchandise_discount <= subtotal
    assert result.shipping_discount in {0, shipping}
    assert subtotal + shipping - result.total_discount >= 0
    # The order discount's shares add up to it.
    for order in result.order_allocations:
        shares = [a.amount for a in every if a.discount_id == order.discount_id]
        assert sum(shares) == order.amount


@PROPERTIES
@given(*SCENARIO)
def test_each_line_takes_its_best_line_discount_then_one_order_discount(
    cart: list[DiscountableLine],
    shipping: int,
    candidates: list[Discount],
    entered: list[str],
    used: frozenset[int],
) -> None:
    result = apply_discounts(cart, shipping, candidates, entered, NOW, used)
    coded = {c.discount_id for c in result.codes if c.applicable}
    in_force = [
        d
        for d in candidates
        if (d.automatic or d.id in coded) and code_refusal(d, cart, NOW, used) is None
    ]
    by_id = {d.id: d for d in in_force}
    assert result.applied_discount_ids <= by_id.keys()
    left = {}
    for item in cart:
        found = result.line_allocations.get(item.key, ())
        line_scoped = [a for a in found if by_id[a.discount_id].line_scoped]
        assert len(line_scoped) <= 1
        best = max(
            (d.value.off(item.subtotal) for d in in_force if d.line_scoped and d.covers(item)),
            default=0,
        )
        assert sum(a.amount for a in line_scoped) == best
        left[item.key] = item.subtotal - best
    assert len(result.order_allocations) <= 1
    best_order = max(
        (d.value.off(sum(left.values())) for d in in_force if not d.line_scoped), default=0
    )
    assert sum(a.amount for a in result.order_allocations) == best_order
    # Pro rata: each share is within one minor unit of its exact share.
    if result.order_allocations:
        order = result.order_allocations[0]
        total = sum(left.values())
        for item in cart:
            share = sum(
                a.amount
                for a in result.line_allocations.get(item.key, ())
                if a.discount_id == order.discount_id
            )
            assert abs(share * total - order.amount * left[item.key]) < total
    free = any(d.value.kind is DiscountKind.FREE_SHIPPING for d in in_force)
    assert result.free_shipping is free


@PROPERTIES
@given(*SCENARIO, st.randoms(use_true_random=False))
def test_the_result_depends_on_neither_the_order_of_lines_nor_of_candidates(
    cart: list[DiscountableLine],
    shipping: int,
    candidates: list[Discount],
    entered: list[str],
    used: frozenset[int],
    random: Random,
) -> None:
    first = apply_discounts(cart, shipping, candidates, entered, NOW, used)
    assert apply_discounts(cart, shipping, candidates, entered, NOW, used) == first
    shuffled_cart, shuffled_candidates = list(cart), list(candidates)
    random.shuffle(shuffled_cart)
    random.shuffle(shuffled_candidates)
    again = apply_discounts(shuffled_cart, shipping, shuffled_candidates, entered, NOW, used)
    assert again.line_allocations == first.line_allocations
    assert again.order_allocations == first.order_allocations
    assert again.shipping_allocation == first.shipping_allocation
    assert again.codes == first.codes


@PROPERTIES
@given(*SCENARIO)
def test_every_entered_code_gets_an_answer_that_matches_code_refusal(
    cart: list[DiscountableLine],
    shipping: int,
    candidates: list[Discount],
    entered: list[str],
    used: frozenset[int],
) -> None:
    result = apply_discounts(cart, shipping, candidates, entered, NOW, used)
    assert [c.code for c in result.codes] == entered
    by_code: dict[str, Discount] = {}
    for discount in sorted(candidates, key=lambda d: d.id):
        if discount.code is not None:
            by_code.setdefault(discount.code, discount)
    for answer in result.codes:
        expected = code_refusal(by_code.get(answer.code), cart, NOW, used)
        assert answer.refusal is expected
        assert answer.applicable is (expected is None)


@PROPERTIES
@given(st.text(max_size=80))
def test_a_canonical_code_is_its_own_canonical_form(raw: str) -> None:
    code = canonical_code(raw)
    if code is None:
        with pytest.raises(Rejected):
            normalize_code(raw)
        return
    assert normalize_code(raw) == code == canonical_code(code) == canonical_code(code.lower())
    assert 1 <= len(code) <= 64 and code.isascii() and code == code.upper()


# -- pricing a cart with discounts, and the finder that loads them -------------------------


def _shoe_cart(codes: tuple[str, ...] = ()) -> tuple[Cart, dict[int, Variant], dict[int, Product]]:
    shoe = Variant(11, 1, "SHOE", "Default", (), 4000, None, "USD", 0)
    cart = Cart("c", None, None, "DE", None, (CartLine(11, 1),), NOW, NOW, discount_codes=codes)
    return cart, {11: shoe}, {1: _product(1, category_id=7)}


def test_a_priced_cart_pays_tax_on_what_is_left_after_discounts() -> None:
    # Given a 40.00 shoe, 5.99 shipping under 50.00, 19% tax, and a 25% code.
    cart, variants, products = _shoe_cart(("QUARTER",))
    quarter = Discount(1, "Quarter", "QUARTER", DiscountValue.percentage(2_500))
    rules = PricingRules("USD", 599, 5000, {"DE": 1_900})
    stock = {11: None}
    # When it is priced with and without the code's discount.
    context = DiscountContext([quarter], {}, frozenset(), NOW)
    with_code = price_cart(cart, variants, products, stock, rules, None, context).cost
    without = price_cart(cart, variants, products, stock, rules).cost
    # Then tax is on 30.00 + 5.99, the total adds up, and without a context nothing is off.
    assert (with_code.discount, with_code.tax, with_code.total) == (1_000, 684, 3_000 + 599 + 684)
    assert with_code.subtotal - with_code.discount + with_code.shipping + with_code.tax == (
        with_code.total
    )
    assert (without.discount, without.total) == (0, 4_000 + 599 + 874)


class _CountingStore:
    def __init__(self, automatic: list[Discount], coded: list[Discount]) -> None:
        self.automatic_reads = 0
        self.code_reads: list[tuple[str, ...]] = []
        self.used_reads = 0
        self._automatic = automatic
        self._coded = coded

    async def automatic(self, now: datetime) -> Sequence[Discount]:
        self.automatic_reads += 1
        return self._automatic

    async def by_codes(self, codes: Sequence[str]) -> Sequence[Discount]:
        self.code_reads.append(tuple(codes))
        return [d for d in self._coded if d.code in codes]

    async def used_by(self, keys: Sequence[str], discount_ids: Collection[int]) -> frozenset[int]:
        self.used_reads += 1
        return frozenset(discount_ids) if "customer:5" in keys else frozenset()

    async def create(self, discount: Discount) -> Discount:
        return discount


async def test_the_finder_keeps_automatic_discounts_and_reads_only_what_a_cart_needs() -> None:
    # Given a category sale (automatic), a once-per-customer code, and a clock we move.
    sale = Discount(
        1,
        "Sale",
        None,
        DiscountValue.percentage(1_500),
        DiscountScope.CATEGORIES,
        category_ids=frozenset({3}),
    )
    once = Discount(2, "Once", "ONCE", DiscountValue.percentage(500), once_per_customer=True)
    store = _CountingStore([sale], [once])
    moment = [0.0]
    finder = DiscountFinder(store, lambda email: f"idx({email})", 10.0, lambda: moment[0])
    looked_up: list[list[int]] = []

    async def categories(ids: Sequence[int]) -> Mapping[int, Category]:
        looked_up.append(list(ids))
        return {7: Category(7, 3, "shoes", "Shoes", "", "/3/7/", 0)}

    _, _, products = _shoe_cart()
    # When a guest cart without codes is read twice, then a customer's with the code.
    first = await finder.context((), products, categories, finder.buyer(None, None), NOW)
    await finder.context((), products, categories, (), NOW)
    theirs = await finder.context(("ONCE",), products, categories, finder.buyer(5, "a@b.co"), NOW)
    await finder.context(("ONCE", "NOPE"), products, categories, (), NOW)
    await finder.context(("NOPE",), products, categories, (), NOW)
    moment[0] = 11.0
    await finder.context((), products, categories, (), NOW)
    finder.forget()
    await finder.context((), products, categories, (), NOW)
    # Then the automatic ones were read when they were stale or forgotten, each code once
    # while kept (an unknown one too), categories because the sale is scoped to them, past
    # uses only for the once-per-customer code.
    assert store.automatic_reads == 3 and store.code_reads == [("ONCE",), ("NOPE",)]
    assert store.used_reads == 1 and theirs.used_by_buyer == frozenset({2})
    assert [d.id for d in first.candidates] == [1] and [d.id for d in theirs.candidates] == [1, 2]
    assert looked_up == [[7]] * 7
    assert finder.buyer(5, "a@b.co") == ("customer:5", "email:idx(a@b.co)")
