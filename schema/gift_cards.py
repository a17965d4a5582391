"""Gift cards: what staff see of a card, what a cart shows of its applied cards."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import gift_cards
from domain.money import Money as DomainMoney
from domain.pagination import Page
from schema.common import Money, PageInfo
from schema.errors import UserError
from schema.global_id import encode_gid


@strawberry.type(description="Staff: a gift card. Its code is shown once, when it is made.")
class GiftCard:
    id: strawberry.ID
    last_characters: str = strawberry.field(description="The code's last 4 characters.")
    balance: Money
    initial_value: Money
    expires_at: datetime | None = strawberry.field(
        description="From this moment on the card no longer pays; null: it never expires."
    )
    enabled: bool
    note: str | None = strawberry.field(description="Staff's note; never shown to shoppers.")
    created_at: datetime

    @classmethod
    def of(cls, card: gift_cards.GiftCard) -> GiftCard:
        assert card.created_at is not None  # staff only ever see stored cards
        return cls(
            id=gift_card_gid(card.id),
            last_characters=card.last_characters,
            balance=Money.of(DomainMoney(card.balance, card.currency_code)),
            initial_value=Money.of(DomainMoney(card.initial_balance, card.currency_code)),
            expires_at=card.expires_at,
            enabled=card.enabled,
            note=card.note,
            created_at=card.created_at,
        )


@strawberry.type
class GiftCardEdge:
    cursor: str
    node: GiftCard


@strawberry.type
class GiftCardConnection:
    edges: list[GiftCardEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[gift_cards.GiftCard]) -> GiftCardConnection:
        return cls(
            edges=[GiftCardEdge(cursor=e.cursor, node=GiftCard.of(e.node)) for e in page.edges],
            page_info=PageInfo.of(page),
        )


def gift_card_gid(card_id: int) -> strawberry.ID:
    return strawberry.ID(encode_gid("GiftCard", card_id))


@strawberry.type(description="A gift card applied to a cart and what it would pay of it.")
class AppliedGiftCard:
    last_characters: str
    amount_used: Money = strawberry.field(
        description="What this card pays of the cart's total, in the order cards were "
        "applied; 0 for a card that can no longer pay (disabled, expired or empty since)."
    )
    balance: Money = strawberry.field(description="The card's balance now, before this order.")


@strawberry.input
class GiftCardCreateInput:
    initial_value: str = strawberry.field(description='A decimal amount, e.g. "50.00".')
    expires_at: datetime | None = None
    note: str | None = strawberry.field(
        default=None, description="Staff's, at most 500 characters; never shown to shoppers."
    )


@strawberry.input
class GiftCardDisableInput:
    id: strawberry.ID


@strawberry.type
class GiftCardCreatePayload:
    gift_card: GiftCard | None
    gift_card_code: str | None = strawberry.field(
        description="The full code (XXXX-XXXX-XXXX-XXXX), shown this once: it is never "
        "stored and cannot be read again."
    )
    user_errors: list[UserError]


@strawberry.type
class GiftCardDisablePayload:
    gift_card: GiftCard | None
    user_errors: list[UserError]


@strawberry.input
class CartGiftCardCodesUpdateInput:
    cart_id: strawberry.ID
    gift_card_codes: list[str] = strawberry.field(
        description="The codes to apply (at most 5), replacing those applied; [] removes all."
    )
