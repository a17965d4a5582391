"""Gift card rules without I/O: codes, what a shopper may type, digests, and how applied
cards pay for an order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from domain.errors import Rejected, UserErrorCode
from domain.gift_cards import (
    ALPHABET,
    CODE_LENGTH,
    GiftCard,
    apply_gift_cards,
    canonical_code,
    code_digest,
    format_code,
    generate_code,
    last_characters,
    normalize_codes,
    payment_errors,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
KEY = b"k" * 32


def card(card_id: int, balance: int, **fields: Any) -> GiftCard:
    made = GiftCard(card_id, "ABCD", max(balance, 1), balance, "USD", None)
    return replace(made, **fields)


def paid(
    cards: list[GiftCard | None], due: int
) -> list[tuple[int | None, int, UserErrorCode | None]]:
    result = apply_gift_cards(due, cards, "USD", NOW)
    return [(p.card and p.card.id, p.amount_used, p.refusal) for p in result.payments]


# -- codes --------------------------------------------------------------------------------


def test_a_new_code_is_16_unambiguous_characters_and_never_repeats() -> None:
    codes = {generate_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert len(code) == CODE_LENGTH == 16
        assert set(code) <= set(ALPHABET)
    assert not set("0O1IL") & set(ALPHABET)
    # Every character of the alphabet turns up: the codes use all of it.
    assert set("".join(codes)) == set(ALPHABET)


def test_a_code_is_shown_in_groups_of_four() -> None:
    assert format_code("ABCDEFGHJKMNPQRS") == "ABCD-EFGH-JKMN-PQRS"


@pytest.mark.parametrize(
    "typed",
    [
        "ABCD-EFGH-JKMN-PQRS",
        "abcd efgh jkmn pqrs",
        " abcdefghjkmnpqrs ",
        "Ab-Cd Ef-Gh-Jk\tMn-Pq-Rs",
    ],
)
def test_case_spaces_and_dashes_do_not_matter(typed: str) -> None:
    assert canonical_code(typed) == "ABCDEFGHJKMNPQRS"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "ABCD-EFGH-JKMN-PQR",  # 15 characters
        "ABCD-EFGH-JKMN-PQRST",  # 17
        "ABCD-EFGH-JKMN-PQR0",  # look-alikes are not in the alphabet
        "ABCD-EFGH-JKMN-PQRO",
        "ABCD-EFGH-JKMN-PQR1",
        "ABCD-EFGH-JKMN-PQRI",
        "ABCD-EFGH-JKMN-PQRL",
        "ABCD_EFGH_JKMN_PQRS",
        "ABCD-EFGH-JKMN-PQR\u0455",  # a Cyrillic s
        "ABCD-EFGH-JKMN-PQR\x00",
        "-" * 60 + "ABCDEFGHJKMNPQRS",  # longer than anyone types
    ],
)
def test_what_cannot_be_a_code_is_not_one(typed: str) -> None:
    assert canonical_code(typed) is None


def test_the_last_four_characters_are_what_a_shopper_recognises() -> None:
    assert last_characters("ABCDEFGHJKMNPQRS") == "PQRS"


def test_the_digest_is_keyed_stable_and_hides_the_code() -> None:
    code = "ABCDEFGHJKMNPQRS"
    digest = code_digest(code, KEY)
    assert digest == code_digest(code, KEY)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert code not in digest
    assert code_digest(code, b"other key") != digest
    assert code_digest("ABCDEFGHJKMNPQRT", KEY) != digest


def test_applied_codes_lose_repeats_and_junk_answers_like_an_unknown_code() -> None:
    assert normalize_codes(["abcd-efgh-jkmn-pqrs", "ABCDEFGHJKMNPQRS", "SRQPNMKJHGFEDCBA"]) == (
        "ABCDEFGHJKMNPQRS",
        "SRQPNMKJHGFEDCBA",
    )
    with pytest.raises(Rejected) as refused:
        normalize_codes(["ABCDEFGHJKMNPQRS", "nope"])
    assert [(e.code, e.field) for e in refused.value.errors] == [
        (UserErrorCode.GIFT_CARD_NOT_FOUND, ("giftCardCodes", "1"))
    ]


def test_a_cart_takes_at_most_five_gift_cards() -> None:
    assert len(normalize_codes([generate_code() for _ in range(5)])) == 5
    with pytest.raises(Rejected) as refused:
        normalize_codes([generate_code() for _ in range(6)])
    assert [e.code for e in refused.value.errors] == [UserErrorCode.INVALID]


# -- paying -------------------------------------------------------------------------------


def test_one_card_pays_what_it_holds_and_the_gateway_charges_the_rest() -> None:
    result = apply_gift_cards(8000, [card(1, 5000)], "USD", NOW)
    assert [(p.amount_used, p.balance_after) for p in result.payments] == [(5000, 0)]
    assert result.total_used == 5000
    assert result.remaining_due == 3000


def test_a_card_that_covers_it_all_leaves_nothing_to_charge() -> None:
    result = apply_gift_cards(3000, [card(1, 5000)], "USD", NOW)
    assert [(p.amount_used, p.balance_after) for p in result.payments] == [(3000, 2000)]
    assert result.remaining_due == 0


def test_cards_pay_in_the_order_they_were_applied() -> None:
    assert paid([card(2, 1000), card(1, 5000)], 4000) == [(2, 1000, None), (1, 3000, None)]
    assert paid([card(1, 5000), card(2, 1000)], 4000) == [(1, 4000, None), (2, 0, None)]


def test_nothing_due_takes_nothing_from_any_card() -> None:
    assert paid([card(1, 5000)], 0) == [(1, 0, None)]


@pytest.mark.parametrize(
    ("refused", "code"),
    [
        (card(1, 5000, enabled=False), UserErrorCode.GIFT_CARD_DISABLED),
        (card(1, 5000, expires_at=NOW), UserErrorCode.GIFT_CARD_EXPIRED),
        (card(1, 5000, currency_code="EUR"), UserErrorCode.GIFT_CARD_CURRENCY_MISMATCH),
        (card(1, 0), UserErrorCode.GIFT_CARD_DEPLETED),
        (None, UserErrorCode.GIFT_CARD_NOT_FOUND),
    ],
)
def test_a_refused_card_pays_nothing_says_why_and_the_next_card_pays(
    refused: GiftCard | None, code: UserErrorCode
) -> None:
    result = apply_gift_cards(4000, [refused, card(2, 5000)], "USD", NOW)
    assert [(p.amount_used, p.refusal) for p in result.payments] == [(0, code), (4000, None)]
    assert [(e.code, e.field) for e in payment_errors(result.payments)] == [
        (code, ("giftCardCodes", "0"))
    ]


def test_a_card_pays_until_the_moment_it_expires() -> None:
    almost = card(1, 5000, expires_at=NOW + timedelta(seconds=1))
    assert paid([almost], 1000) == [(1, 1000, None)]


def test_the_first_refusal_in_order_answers() -> None:
    everything_wrong = card(1, 0, enabled=False, expires_at=NOW, currency_code="EUR")
    assert paid([everything_wrong], 100) == [(1, 0, UserErrorCode.GIFT_CARD_DISABLED)]
    expired_elsewhere = card(1, 0, expires_at=NOW, currency_code="EUR")
    assert paid([expired_elsewhere], 100) == [(1, 0, UserErrorCode.GIFT_CARD_EXPIRED)]


def test_a_card_applied_twice_pays_once() -> None:
    twice = card(1, 5000)
    assert paid([twice, twice], 8000) == [(1, 5000, None)]


def test_errors_keep_the_index_of_their_code_past_a_repeat() -> None:
    twice = card(1, 5000)
    result = apply_gift_cards(100, [twice, twice, card(2, 10, enabled=False)], "USD", NOW)
    assert [e.field for e in payment_errors(result.payments)] == [("giftCardCodes", "2")]


def test_the_amount_due_is_never_negative() -> None:
    with pytest.raises(ValueError):
        apply_gift_cards(-1, [card(1, 5000)], "USD", NOW)


# -- properties ---------------------------------------------------------------------------

gift_cards = st.builds(
    GiftCard,
    id=st.integers(1, 6),
    last_characters=st.just("ABCD"),
    initial_balance=st.just(10**9),
    balance=st.one_of(st.integers(0, 10_000), st.integers(0, 10**9)),
    currency_code=st.sampled_from(("USD", "USD", "EUR")),
    expires_at=st.none() | st.sampled_from((NOW - timedelta(days=1), NOW, NOW + timedelta(days=1))),
    enabled=st.booleans() | st.just(True),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9), st.lists(st.none() | gift_cards, max_size=6))
def test_cards_never_pay_more_than_is_due_nor_than_they_hold(
    due: int, cards: list[GiftCard | None]
) -> None:
    result = apply_gift_cards(due, cards, "USD", NOW)
    assert 0 <= result.total_used <= due
    assert result.remaining_due == due - result.total_used >= 0
    usable_balance = 0
    for payment in result.payments:
        assert payment.amount_used >= 0
        if payment.refusal is not None:
            assert payment.amount_used == 0
            continue
        assert payment.card is not None
        assert payment.amount_used <= payment.card.balance
        assert payment.balance_after >= 0
        usable_balance += payment.card.balance
    # Greedy in applied order: the cards pay as much as they can, and a card pays only
    # once every card before it is drained.
    assert result.total_used == min(due, usable_balance)
    for index, payment in enumerate(result.payments):
        if payment.amount_used > 0:
            earlier = [p for p in result.payments[:index] if p.refusal is None]
            assert all(p.balance_after == 0 for p in earlier)
    ids = [p.card.id for p in result.payments if p.card is not None]
    assert len(ids) == len(set(ids))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.sampled_from((str.lower, str.upper, format_code)))
def test_a_new_code_survives_however_it_is_typed_and_junk_never_becomes_one(
    noise: str, typed: Callable[[str], str]
) -> None:
    code = generate_code()
    assert canonical_code(typed(code)) == code
    assert canonical_code(format_code(code).lower().replace("-", " ")) == code
    found = canonical_code(noise)
    assert found is None or (len(found) == CODE_LENGTH and set(found) <= set(ALPHABET))
