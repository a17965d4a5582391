"""Money parsing and cursors: pure rules, no I/O."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import ErrorCode, InvalidInput
from domain.money import Money, parse_amount
from domain.pagination import decode_cursor, encode_cursor, page_request


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("19.99", "USD", 1999),
        ("0", "USD", 0),
        (" 5 ", "EUR", 500),
        ("1200", "JPY", 1200),
        ("1.5", "USD", 150),
    ],
)
def test_decimal_strings_become_minor_units(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency, field="price") == minor


@pytest.mark.parametrize("text", ["abc", "", "-1", "1.999", "NaN", "Infinity", "1e40", "12.5"])
def test_bad_amounts_are_refused_with_a_code(text: str) -> None:
    currency = "JPY" if text == "12.5" else "USD"
    with pytest.raises(InvalidInput) as raised:
        parse_amount(text, currency, field="priceMin")
    assert raised.value.code is ErrorCode.INVALID_PRICE
    assert raised.value.field == "priceMin"


def test_money_formats_with_the_currency_exponent() -> None:
    assert Money(1999, "USD").to_decimal_string() == "19.99"
    assert Money(5, "USD").to_decimal_string() == "0.05"
    assert Money(1200, "JPY").to_decimal_string() == "1200"
    assert str(Money(123456, "KWD").amount) == "123.456"


def test_cursors_round_trip_and_are_bound_to_their_ordering() -> None:
    cursor = encode_cursor("p:TITLE:asc", ("Kettle", 42))

    assert decode_cursor("p:TITLE:asc", cursor, arity=2) == ("Kettle", 42)
    with pytest.raises(InvalidInput) as raised:
        decode_cursor("p:PRICE:asc", cursor, arity=2)
    assert raised.value.code is ErrorCode.INVALID_CURSOR


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        encode_cursor("p:ID:asc", (1,)),
        encode_cursor("p:ID:asc", (1, "x")),
    ],
)
def test_garbage_cursors_are_invalid(cursor: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor("p:ID:asc", cursor, arity=2)
    assert raised.value.code is ErrorCode.INVALID_CURSOR


@pytest.mark.parametrize("first", [-1, 101, 10_000])
def test_page_size_is_capped(first: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        page_request(first, None, ordering="x", arity=2, max_size=100)
    assert raised.value.code is ErrorCode.INVALID_PAGE_SIZE


def test_page_size_defaults_and_accepts_the_cap() -> None:
    assert page_request(None, None, ordering="x", arity=2, max_size=100).first == 20
    assert page_request(100, None, ordering="x", arity=2, max_size=100).first == 100
    assert page_request(0, None, ordering="x", arity=2, max_size=100).first == 0


@pytest.mark.parametrize(
    "key",
    [
        (2**63, 1),
        ("t", 2**63),
        (float("nan"), 1),
        (float("inf"), 1),
        ("a\x00", 1),
        ("\ud800", 1),
        ("m" * 1_001, 1),
        (True, 1),
    ],
)
def test_cursors_hold_only_values_postgres_takes(key: tuple[object, ...]) -> None:
    raw = json.dumps(["o", *key]).encode("utf-8", "surrogatepass")
    cursor = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    with pytest.raises(InvalidInput) as raised:
        decode_cursor("o", cursor, 2)
    assert raised.value.code is ErrorCode.INVALID_CURSOR


@given(
    ordering=st.sampled_from(["p:id:asc", "p:price:desc", "r:newest", "c:id", "gift-cards"])
    | st.text(max_size=12),
    key=st.lists(
        st.integers() | st.booleans() | st.text(max_size=8) | st.none() | st.floats(), max_size=3
    ),
)
def test_a_cursor_is_the_text_json_writes_whatever_its_values(
    ordering: str, key: list[object]
) -> None:
    """Integer keys take a shortcut; the cursor a client holds is the same either way."""
    cursor = encode_cursor(ordering, tuple(key))  # type: ignore[arg-type]

    padded = cursor + "=" * (-len(cursor) % 4)
    expected = json.dumps([ordering, *key], separators=(",", ":"))
    assert base64.urlsafe_b64decode(padded).decode() == expected
