"""Filter validation and global ids."""

from __future__ import annotations

import pytest

from domain.catalog import AttributeFilter
from domain.errors import ErrorCode, InvalidInput
from domain.listing import ProductFilterInput, build_filter
from schema.global_id import decode_gid, decode_int_gid, encode_gid, int_key


def test_filter_prices_become_minor_units_and_attributes_tuples() -> None:
    built = build_filter(
        ProductFilterInput(
            category="shirts",
            brands=["Acme"],
            price_min="10",
            price_max="99.99",
            in_stock=True,
            attributes=[("fit", ["slim", "regular"])],
        ),
        "USD",
    )

    assert (built.price_min, built.price_max) == (1000, 9999)
    assert built.attributes == (AttributeFilter("fit", ("slim", "regular")),)
    assert built.brands == ("Acme",)
    assert built.category_slug == "shirts"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (ProductFilterInput(price_min="5", price_max="1"), "filter.priceMin"),
        (ProductFilterInput(attributes=[("fit", [])]), "filter.attributes.values"),
        (ProductFilterInput(attributes=[(" ", ["x"])]), "filter.attributes.name"),
        (ProductFilterInput(brands=[str(i) for i in range(101)]), "filter.brands"),
        (ProductFilterInput(attributes=[(f"a{i}", ["x"]) for i in range(21)]), "filter.attributes"),
    ],
)
def test_unreasonable_filters_are_refused(raw: ProductFilterInput, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        build_filter(raw, "USD")
    assert raised.value.field == field


def test_global_ids_are_opaque_and_round_trip() -> None:
    gid = encode_gid("Product", 42)

    assert "42" not in gid and "Product" not in gid
    assert decode_gid(gid) == ("Product", "42")
    assert decode_int_gid(gid, "Product") == 42


@pytest.mark.parametrize(
    "value",
    [
        "",
        "%%%",
        "Zm9v",
        encode_gid("Category", 1),
        encode_gid("Product", "abc"),
        encode_gid("Product", "9" * 30),
        encode_gid("Product", "\u00b2"),  # isdigit() is true, int() fails
        encode_gid("Product", "\u0661"),  # Arabic-Indic one: int() reads 1
        encode_gid("Product", "\uff11"),  # fullwidth one: int() reads 1
        encode_gid("Product", "01"),  # one id, one spelling
        encode_gid("Product", "9" * 19),  # may pass bigint
        encode_gid("Product", "1\x00"),
        encode_gid("Product", "1" * 10_000),
    ],
)
def test_foreign_or_malformed_ids_are_invalid(value: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_int_gid(value, "Product")
    assert raised.value.code is ErrorCode.INVALID_ID


@pytest.mark.parametrize(
    ("key", "expected"),
    [("0", 0), ("1", 1), ("9" * 18, int("9" * 18)), ("", None), ("-1", None), (" 1", None)],
)
def test_integer_keys_are_canonical_ascii_digits(key: str, expected: int | None) -> None:
    assert int_key(key) == expected
