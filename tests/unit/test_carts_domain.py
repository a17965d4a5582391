"""Cart rules without I/O: line merging, limits, addresses, pricing and warnings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.addresses import MailingAddress, check_address
from domain.carts import Cart, CartLine, PricingRules, WarningCode, merge_line_inputs, price_cart
from domain.catalog import InventoryLevel, Product, ProductStatus, RatingSummary, Variant
from domain.errors import Rejected, UserErrorCode

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RULES = PricingRules(
    "USD", shipping_flat_rate=599, free_shipping_threshold=5000, tax_rates={"DE": 1900}
)


def _variant(variant_id: int, price: int, product_id: int = 1) -> Variant:
    return Variant(
        variant_id, product_id, f"SKU-{variant_id}", "Default", (), price, None, "USD", 0
    )


def _product(product_id: int = 1, status: ProductStatus = ProductStatus.ACTIVE) -> Product:
    return Product(
        product_id,
        f"p{product_id}",
        "P",
        "",
        "B",
        None,
        status,
        (),
        100,
        100,
        "USD",
        NOW,
        NOW,
        RatingSummary(product_id, 0.0, 0),
    )


def _cart(
    *lines: CartLine, country: str | None = None, address: MailingAddress | None = None
) -> Cart:
    return Cart("c", None, "a@b.co", country, address, tuple(lines), NOW, NOW)


def test_repeated_variants_add_up_and_limits_hold() -> None:
    merged = merge_line_inputs([CartLine(1, 2), CartLine(2, 1), CartLine(1, 3)])

    assert merged == [CartLine(1, 5), CartLine(2, 1)]
    with pytest.raises(Rejected) as zero:
        merge_line_inputs([CartLine(1, 0)])
    assert zero.value.errors[0].code is UserErrorCode.INVALID_QUANTITY
    with pytest.raises(Rejected) as too_many_units:
        merge_line_inputs([CartLine(1, 500), CartLine(1, 500)])
    assert too_many_units.value.errors[0].code is UserErrorCode.INVALID_QUANTITY
    with pytest.raises(Rejected) as too_many_lines:
        merge_line_inputs([CartLine(i, 1) for i in range(101)])
    assert too_many_lines.value.errors[0].code is UserErrorCode.TOO_MANY_LINES


def test_addresses_need_the_basics_and_a_real_country_code() -> None:
    good = MailingAddress(" Ann ", "Lee", "1 Main St", "", "Berlin", "", "10115", "de", "")

    assert check_address(good).country_code == "DE"
    assert check_address(good).first_name == "Ann"
    with pytest.raises(Rejected) as raised:
        check_address(MailingAddress("", "Lee", "x" * 201, "", "", "", "1", "Germany", ""))
    problems = {(e.code, e.field[-1]) for e in raised.value.errors}
    assert problems == {
        (UserErrorCode.BLANK, "firstName"),
        (UserErrorCode.TOO_LONG, "address1"),
        (UserErrorCode.BLANK, "city"),
        (UserErrorCode.INVALID_COUNTRY_CODE, "countryCode"),
    }


def test_shipping_is_flat_below_the_threshold_and_free_above() -> None:
    variants = {1: _variant(1, 1999)}
    stock = {1: InventoryLevel(1, 10)}
    small = price_cart(_cart(CartLine(1, 2)), variants, {1: _product()}, stock, RULES)
    large = price_cart(_cart(CartLine(1, 3)), variants, {1: _product()}, stock, RULES)
    empty = price_cart(_cart(), variants, {1: _product()}, stock, RULES)

    assert (small.cost.subtotal, small.cost.shipping, small.cost.total) == (3998, 599, 4597)
    assert (large.cost.subtotal, large.cost.shipping) == (5997, 0)
    assert (empty.cost.shipping, empty.cost.total) == (0, 0)


def test_tax_follows_the_shipping_country_and_rounds_half_up_in_integers() -> None:
    variants = {1: _variant(1, 1050)}
    stock = {1: InventoryLevel(1, 10)}
    address = MailingAddress("A", "B", "1", "", "C", "", "1", "DE", "")
    by_address = price_cart(
        _cart(CartLine(1, 1), country="US", address=address),
        variants,
        {1: _product()},
        stock,
        RULES,
    )
    by_buyer = price_cart(
        _cart(CartLine(1, 1), country="DE"), variants, {1: _product()}, stock, RULES
    )
    untaxed = price_cart(
        _cart(CartLine(1, 1), country="US"), variants, {1: _product()}, stock, RULES
    )

    # (1050 + 599) * 19% = 313.31 -> 313
    assert by_address.cost.tax == by_buyer.cost.tax == 313
    assert by_address.cost.total == 1050 + 599 + 313
    assert untaxed.cost.tax == 0


def test_warnings_for_stock_and_unavailable_variants_block_checkout() -> None:
    variants = {1: _variant(1, 100), 2: _variant(2, 100), 3: _variant(3, 100, product_id=2)}
    products = {1: _product(1), 2: _product(2, ProductStatus.ARCHIVED)}
    stock = {1: InventoryLevel(1, 0), 2: InventoryLevel(2, 2), 3: InventoryLevel(3, 9)}
    address = MailingAddress("A", "B", "1", "", "C", "", "1", "US", "")
    cart = _cart(CartLine(1, 1), CartLine(2, 5), CartLine(3, 1), CartLine(4, 1), address=address)

    priced = price_cart(cart, variants, products, stock, RULES)

    assert [(w.code, w.variant_id, w.available_quantity) for w in priced.warnings] == [
        (WarningCode.OUT_OF_STOCK, 1, 0),
        (WarningCode.INSUFFICIENT_STOCK, 2, 2),
        (WarningCode.VARIANT_UNAVAILABLE, 3, 0),
        (WarningCode.VARIANT_UNAVAILABLE, 4, 0),
    ]
    assert priced.cost.subtotal == 100 + 500  # unsaleable lines cost nothing
    assert priced.checkout_ready is False
    fine = price_cart(_cart(CartLine(2, 2), address=address), variants, products, stock, RULES)
    assert fine.checkout_ready is True
