"""Gift cards as use cases: staff issue and disable them, shoppers apply them to carts.

The pure rules (codes, digests, how cards pay) are domain.gift_cards'. Here: staff
checks, the store port, and the failure throttle on code look-ups (a code is a password:
each code no enabled-or-not card has counts as a failure for the client; a successful
look-up costs nothing against the limit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.catalog_admin import ensure_staff
from domain.catalog_rules import PRICE_MAX
from domain.customers import Customer
from domain.errors import InvalidInput, Rejected, ThrottledError, UserError, UserErrorCode
from domain.gift_cards import (
    REFUSAL_MESSAGES,
    GiftCard,
    code_digest,
    generate_code,
    last_characters,
    normalize_codes,
)
from domain.money import parse_amount
from domain.order_status import FailureThrottle
from domain.pagination import Page, PageRequest, page_request
from domain.text_input import string_problem
from domain.time_input import moment_problem

FIELD = "giftCardCodes"
NOTE_MAX = 500
GIFT_CARDS_ORDERING = "gift-cards"


class GiftCardStore(Protocol):
    async def create(
        self,
        digest: str,
        last_characters: str,
        initial_balance: int,
        currency_code: str,
        expires_at: datetime | None,
        note: str | None = None,
    ) -> GiftCard:
        """Writes the card and its GiftCardCreated event in one transaction."""
        ...

    async def page(self, request: PageRequest) -> Page[GiftCard]:
        """Every card, newest first (by id, descending)."""
        ...

    async def disable(self, card_id: int) -> GiftCard | None:
        """None when no card has this id; writes GiftCardDisabled with the change."""
        ...

    async def by_digests(self, digests: Sequence[str]) -> Mapping[str, GiftCard]: ...

    async def by_ids(self, ids: Sequence[int]) -> Mapping[int, GiftCard]: ...


@dataclass(frozen=True, slots=True)
class IssuedGiftCard:
    card: GiftCard
    code: str  # canonical; shown once, never stored


def gift_cards_page_request(first: int | None, after: str | None, max_size: int) -> PageRequest:
    return page_request(first, after, ordering=GIFT_CARDS_ORDERING, arity=1, max_size=max_size)


async def issue_gift_card(
    store: GiftCardStore,
    code_key: bytes,
    amount: int,
    currency_code: str,
    expires_at: datetime | None = None,
    note: str | None = None,
) -> IssuedGiftCard:
    """A new card with a fresh code: only its keyed digest and last characters are
    stored. `amount` (minor units) and `note` are checked already."""
    code = generate_code()
    card = await store.create(
        code_digest(code, code_key), last_characters(code), amount, currency_code, expires_at, note
    )
    return IssuedGiftCard(card, code)


class GiftCardDesk:
    def __init__(
        self,
        store: GiftCardStore,
        throttle: FailureThrottle,
        code_key: bytes,
        currency_code: str,
    ) -> None:
        self._store = store
        self._throttle = throttle
        self._key = code_key
        self._currency = currency_code

    async def create(
        self,
        staff: Customer,
        initial_value: str,
        expires_at: datetime | None,
        now: datetime,
        note: str | None = None,
    ) -> IssuedGiftCard:
        ensure_staff(staff)
        try:
            amount = parse_amount(initial_value, self._currency, field="initialValue")
        except InvalidInput as error:
            raise Rejected.one(UserErrorCode.INVALID_PRICE, error.message, "initialValue") from None
        errors: list[UserError] = []
        if not 0 < amount <= PRICE_MAX:
            message = f"initialValue must be more than 0 and at most {PRICE_MAX}"
            errors.append(UserError(UserErrorCode.INVALID_PRICE, message, ("initialValue",)))
        if expires_at is not None and (moment_problem(expires_at) is not None or expires_at <= now):
            message = "expiresAt must be a future time with a UTC offset"
            errors.append(UserError(UserErrorCode.INVALID, message, ("expiresAt",)))
        problem = None if note is None else string_problem(note, NOTE_MAX)
        if note is not None and problem is not None:
            code = UserErrorCode.TOO_LONG if len(note) > NOTE_MAX else UserErrorCode.INVALID
            errors.append(UserError(code, f"note {problem}", ("note",)))
        if errors:
            raise Rejected(errors)
        kept_note = None if note is None else note.strip() or None
        return await issue_gift_card(
            self._store, self._key, amount, self._currency, expires_at, kept_note
        )

    async def page(self, staff: Customer, request: PageRequest) -> Page[GiftCard]:
        ensure_staff(staff)
        return await self._store.page(request)

    async def disable(self, staff: Customer, card_id: int | None) -> GiftCard:
        ensure_staff(staff)
        card = None if card_id is None else await self._store.disable(card_id)
        if card is None:
            raise Rejected.one(UserErrorCode.GIFT_CARD_NOT_FOUND, "no such gift card", "id")
        return card

    async def cards_for_codes(
        self, typed: Sequence[str], client: str, now: datetime
    ) -> tuple[int, ...]:
        """The ids of the cards these codes open, in order, when every one may pay an
        order in the store's currency now; else Rejected with a userError per refused code
        (at its index) and nothing to store. ThrottledError once the client has failed too
        often in the window, before anything is looked up."""
        if await self._throttle.blocked(client):
            raise ThrottledError("too many unknown gift card codes from this client; retry later")
        try:
            codes = normalize_codes(typed, FIELD)
        except Rejected as rejected:
            if any(e.code is UserErrorCode.GIFT_CARD_NOT_FOUND for e in rejected.errors):
                await self._throttle.failed(client)
            raise
        digests = [code_digest(code, self._key) for code in codes]
        found = await self._store.by_digests(digests) if digests else {}
        errors: list[UserError] = []
        ids: list[int] = []
        for index, digest in enumerate(digests):
            card = found.get(digest)
            refusal = (
                UserErrorCode.GIFT_CARD_NOT_FOUND
                if card is None
                else card.refusal(self._currency, now)
            )
            if refusal is not None:
                errors.append(UserError(refusal, REFUSAL_MESSAGES[refusal], (FIELD, str(index))))
            elif card is not None and card.id not in ids:
                ids.append(card.id)
        if any(e.code is UserErrorCode.GIFT_CARD_NOT_FOUND for e in errors):
            await self._throttle.failed(client)
        if errors:
            raise Rejected(errors)
        return tuple(ids)

    async def cards(self, ids: Sequence[int]) -> tuple[GiftCard | None, ...]:
        """The cards a cart holds, in its order (None for one gone since)."""
        found = await self._store.by_ids(ids) if ids else {}
        return tuple(found.get(card_id) for card_id in ids)
