"""Staff issue, disable and list gift cards. A guest gets UNAUTHENTICATED, a customer
FORBIDDEN, both before anything is read or written."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from domain.catalog_admin import ensure_staff
from domain.gift_card_desk import gift_cards_page_request
from domain.gift_cards import format_code
from schema.context import Info
from schema.gift_cards import (
    GiftCard,
    GiftCardConnection,
    GiftCardCreateInput,
    GiftCardCreatePayload,
    GiftCardDisableInput,
    GiftCardDisablePayload,
)
from schema.global_id import int_gid_or_none
from schema.refusals import refusals_as


@strawberry.type
class GiftCardQuery:
    @strawberry.field(description="Staff: every gift card, newest first; `first` at most 100.")
    async def gift_cards(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> GiftCardConnection:
        staff = ensure_staff(await info.context.require_viewer())
        request = gift_cards_page_request(first, after, info.context.settings.max_page_size)
        return GiftCardConnection.of(await info.context.gift_cards.page(staff, request))


@strawberry.type
class GiftCardMutation:
    @strawberry.mutation(
        description="Staff: issue a gift card in the store's currency; the payload holds its "
        "code, shown once. Checkout does not accept gift cards yet: carts show what they "
        "would pay, nothing is debited."
    )
    @refusals_as(GiftCardCreatePayload)
    async def gift_card_create(
        self, info: Info, input: GiftCardCreateInput
    ) -> GiftCardCreatePayload:
        staff = ensure_staff(await info.context.require_viewer())
        issued = await info.context.gift_cards.create(
            staff, input.initial_value, input.expires_at, datetime.now(UTC), input.note
        )
        return GiftCardCreatePayload(
            gift_card=GiftCard.of(issued.card),
            gift_card_code=format_code(issued.code),
            user_errors=[],
        )

    @strawberry.mutation(description="Staff: a disabled card no longer pays; carts drop it.")
    @refusals_as(GiftCardDisablePayload)
    async def gift_card_disable(
        self, info: Info, input: GiftCardDisableInput
    ) -> GiftCardDisablePayload:
        staff = ensure_staff(await info.context.require_viewer())
        card = await info.context.gift_cards.disable(staff, int_gid_or_none(input.id, "GiftCard"))
        return GiftCardDisablePayload(gift_card=GiftCard.of(card), user_errors=[])
