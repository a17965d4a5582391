"""Gift cards: codes (bearer credentials) and how applied cards pay for an order.

A code is 16 characters from an alphabet without look-alikes (no 0/O, 1/I/L), shown in
groups of four (`XXXX-XXXX-XXXX-XXXX`), about 79 random bits from `secrets`. It is a
password: storage keeps only its keyed digest (`code_digest`) and its last 4 characters,
and shows the code once, when the card is made. What a shopper types is read leniently:
case, spaces and dashes do not matter.

How cards pay (`apply_gift_cards`): after discounts, shipping and tax, the cards pay in
the order they were applied, each as much as its balance and what is still due allow;
the card gateway charges the rest (nothing when the cards cover it all). A card refused
(disabled, expired, in another currency, or empty) pays nothing and says why; a card
applied twice pays once. No card ever pays more than its balance, and together they never
pay more than is due.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.errors import Rejected, UserError, UserErrorCode

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 16
GROUP = 4
LAST_CHARACTERS = 4
MAX_GIFT_CARDS = 5
# What a typed code may be before it is even looked at: 16 characters plus separators.
MAX_TYPED_LENGTH = 64
_SEPARATORS = str.maketrans("", "", " -\t")


def generate_code() -> str:
    """A new code in canonical form (16 characters, no separators)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """The canonical code grouped for display: ABCD-EFGH-JKMN-PQRS."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def canonical_code(typed: str) -> str | None:
    """What the shopper typed as the canonical code (upper case, no spaces or dashes), or
    None when it cannot be a code (which answers like an unknown code)."""
    if len(typed) > MAX_TYPED_LENGTH or not typed.isascii():
        return None
    code = typed.translate(_SEPARATORS).upper()
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def last_characters(code: str) -> str:
    return code[-LAST_CHARACTERS:]


def code_digest(code: str, key: bytes) -> str:
    """The keyed digest (HMAC-SHA256, hex) storage looks a card up by: a dump of the table
    alone cannot test guesses. `code` is canonical."""
    return hmac.new(key, code.encode("ascii"), hashlib.sha256).hexdigest()


def normalize_codes(typed: Sequence[str], field: str = "giftCardCodes") -> tuple[str, ...]:
    """The codes a shopper applies, canonical, without repeats, at most 5. A code that
    cannot exist is refused here, before any look-up, as GIFT_CARD_NOT_FOUND (the same
    answer as an unknown code, and it counts as a failed look-up for throttling)."""
    if len(typed) > MAX_GIFT_CARDS:
        message = f"a cart takes at most {MAX_GIFT_CARDS} gift cards"
        raise Rejected.one(UserErrorCode.INVALID, message, field)
    codes: list[str] = []
    errors: list[UserError] = []
    for index, raw in enumerate(typed):
        code = canonical_code(raw)
        if code is None:
            errors.append(_refusal(UserErrorCode.GIFT_CARD_NOT_FOUND, (field, str(index))))
        elif code not in codes:
            codes.append(code)
    if errors:
        raise Rejected(errors)
    return tuple(codes)


@dataclass(frozen=True, slots=True)
class GiftCard:
    id: int
    last_characters: str
    initial_balance: int
    balance: int
    currency_code: str
    expires_at: datetime | None  # exclusive: at expires_at the card no longer pays
    enabled: bool = True
    note: str | None = None  # staff's; never shown to shoppers
    created_at: datetime | None = None  # None only for a card not read from storage

    def refusal(self, currency_code: str, now: datetime) -> UserErrorCode | None:
        """Why this card cannot pay an order in `currency_code` now, or None."""
        if not self.enabled:
            return UserErrorCode.GIFT_CARD_DISABLED
        if self.expires_at is not None and now >= self.expires_at:
            return UserErrorCode.GIFT_CARD_EXPIRED
        if self.currency_code != currency_code:
            return UserErrorCode.GIFT_CARD_CURRENCY_MISMATCH
        if self.balance <= 0:
            return UserErrorCode.GIFT_CARD_DEPLETED
        return None


@dataclass(frozen=True, slots=True)
class GiftCardPayment:
    code_index: int  # position of the card's code among the applied codes
    card: GiftCard | None  # None: no card has this code
    amount_used: int
    refusal: UserErrorCode | None

    @property
    def balance_after(self) -> int:
        return 0 if self.card is None else self.card.balance - self.amount_used


@dataclass(frozen=True, slots=True)
class GiftCardResult:
    payments: tuple[GiftCardPayment, ...]  # one per applied code but repeats, in order
    amount_due: int

    @property
    def total_used(self) -> int:
        return sum(p.amount_used for p in self.payments)

    @property
    def remaining_due(self) -> int:
        """What the card gateway charges."""
        return self.amount_due - self.total_used


def apply_gift_cards(
    amount_due: int, cards: Sequence[GiftCard | None], currency_code: str, now: datetime
) -> GiftCardResult:
    """How much each applied card pays of `amount_due` (after discounts, shipping and tax).
    `cards` holds, for each applied code in order, its card or None when no card has it."""
    if amount_due < 0:
        raise ValueError("the amount due is never negative")
    left = amount_due
    payments: list[GiftCardPayment] = []
    seen: set[int] = set()
    for index, card in enumerate(cards):
        if card is None:
            payments.append(GiftCardPayment(index, None, 0, UserErrorCode.GIFT_CARD_NOT_FOUND))
            continue
        if card.id in seen:
            continue
        seen.add(card.id)
        refusal = card.refusal(currency_code, now)
        used = 0 if refusal is not None else min(card.balance, left)
        left -= used
        payments.append(GiftCardPayment(index, card, used, refusal))
    return GiftCardResult(tuple(payments), amount_due)


REFUSAL_MESSAGES = {
    UserErrorCode.GIFT_CARD_NOT_FOUND: "no gift card has this code",
    UserErrorCode.GIFT_CARD_DISABLED: "this gift card has been disabled",
    UserErrorCode.GIFT_CARD_EXPIRED: "this gift card has expired",
    UserErrorCode.GIFT_CARD_CURRENCY_MISMATCH: "this gift card is in another currency",
    UserErrorCode.GIFT_CARD_DEPLETED: "this gift card has no balance left",
}


def payment_errors(
    payments: Sequence[GiftCardPayment], field: str = "giftCardCodes"
) -> list[UserError]:
    """A userError per refused card, at its code's index among the applied codes."""
    return [
        _refusal(p.refusal, (field, str(p.code_index))) for p in payments if p.refusal is not None
    ]


def _refusal(code: UserErrorCode, field: tuple[str, ...]) -> UserError:
    return UserError(code, REFUSAL_MESSAGES[code], field)
