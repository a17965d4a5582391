"""Catalog write rules, without I/O: slugs, prices, variants, attributes."""

from __future__ import annotations

import pytest

from domain.catalog import Attribute, ProductStatus, SelectedOption
from domain.catalog_rules import (
    ProductFields,
    VariantFields,
    check_product,
    check_quantity,
    check_variant,
    parse_price,
    slug_from_title,
)
from domain.errors import Rejected


def codes(error: pytest.ExceptionInfo[Rejected]) -> list[tuple[str, tuple[str, ...]]]:
    return [(e.code.value, e.field) for e in error.value.errors]


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Tea Pot", "tea-pot"),
        ("  Crème Brûlée -- Pot, 2 pcs!  ", "creme-brulee-pot-2-pcs"),
        ("日本茶", ""),
        ("a " * 100, ("a-" * 60)[:119]),
    ],
)
def test_slugs_from_titles(title: str, slug: str) -> None:
    assert slug_from_title(title) == slug


def product(**changes: object) -> ProductFields:
    fields: dict[str, object] = {
        "title": "Pot",
        "slug": "pot",
        "description": "",
        "brand": "",
        "category_id": None,
        "attributes": (),
        "status": ProductStatus.DRAFT,
        **changes,
    }
    return ProductFields(**fields)  # type: ignore[arg-type]


def test_a_product_reports_every_problem_at_once() -> None:
    with pytest.raises(Rejected) as refused:
        check_product(
            product(
                title="",
                slug="Pot_1",
                brand="b" * 121,
                attributes=(Attribute("size", "1"), Attribute("Size", "2"), Attribute("", "x")),
            )
        )
    assert codes(refused) == [
        ("BLANK", ("title",)),
        ("INVALID", ("slug",)),
        ("TOO_LONG", ("brand",)),
        ("INVALID", ("attributes",)),
        ("INVALID", ("attributes", "2", "name")),
    ]
    assert check_product(product()) == product()


@pytest.mark.parametrize("slug", ["a", "a-b", "a1-2b-c3", "x" * 120])
def test_good_slugs(slug: str) -> None:
    assert check_product(product(slug=slug)).slug == slug


@pytest.mark.parametrize("slug", ["", "-a", "a-", "a--b", "A", "a b", "ä", "x" * 121])
def test_bad_slugs(slug: str) -> None:
    with pytest.raises(Rejected):
        check_product(product(slug=slug))


@pytest.mark.parametrize(
    ("text", "minor"), [("19.99", 1999), ("0.01", 1), ("7", 700), ("10000000.00", 10**9)]
)
def test_prices(text: str, minor: int) -> None:
    assert parse_price(text, "USD", "price") == minor


@pytest.mark.parametrize("text", ["0", "0.00", "-1", "1.001", "abc", "NaN", "10000000.01"])
def test_refused_prices(text: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_price(text, "USD", "price")
    assert codes(refused) == [("INVALID_PRICE", ("price",))]


def test_prices_follow_the_currency_exponent() -> None:
    assert parse_price("500", "JPY", "price") == 500
    with pytest.raises(Rejected):
        parse_price("500.5", "JPY", "price")


def variant(**changes: object) -> VariantFields:
    fields: dict[str, object] = {
        "sku": "POT-1",
        "title": "Small",
        "options": (SelectedOption("Size", "S"),),
        "price": 1000,
        "compare_at_price": None,
        **changes,
    }
    return VariantFields(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"compare_at_price": 1000}, [("INVALID_PRICE", ("compareAtPrice",))]),
        ({"compare_at_price": 999}, [("INVALID_PRICE", ("compareAtPrice",))]),
        ({"sku": ""}, [("BLANK", ("sku",))]),
        ({"sku": "POT 1"}, [("INVALID", ("sku",))]),
        ({"sku": "S" * 65}, [("TOO_LONG", ("sku",))]),
        ({"title": ""}, [("BLANK", ("title",))]),
        (
            {"options": tuple(SelectedOption(f"o{i}", "v") for i in range(6))},
            [("INVALID", ("options",))],
        ),
    ],
)
def test_refused_variants(
    changes: dict[str, object], expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    with pytest.raises(Rejected) as refused:
        check_variant(variant(**changes))
    assert codes(refused) == expected


def test_a_sale_price_below_its_compare_at_price_is_fine() -> None:
    assert check_variant(variant(compare_at_price=1001)).compare_at_price == 1001


def test_quantities() -> None:
    check_quantity(0, "stock")
    check_quantity(-5, "delta", allow_negative=True)
    for value, negative in ((-1, False), (10**9 + 1, False), (-(10**9) - 1, True)):
        with pytest.raises(Rejected):
            check_quantity(value, "stock", allow_negative=negative)
