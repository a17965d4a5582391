"""Cart mutations and the `cart` query: thin shells around domain.carts.Carts."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import strawberry

from domain.addresses import MailingAddress
from domain.carts import CartLine
from domain.discounts import REFUSAL_MESSAGES as DISCOUNT_REFUSALS
from domain.errors import Rejected, UserErrorCode
from domain.errors import UserError as DomainUserError
from schema.carts import (
    Cart,
    CartBuyerIdentityUpdateInput,
    CartCreateInput,
    CartLineInput,
    CartLinesAddInput,
    CartLinesRemoveInput,
    CartLinesUpdateInput,
    CartPayload,
    CartShippingAddressUpdateInput,
    build_cart,
)
from schema.context import Info
from schema.discount_allocations import CartDiscountCodesUpdateInput
from schema.errors import UserError
from schema.gift_cards import CartGiftCardCodesUpdateInput
from schema.global_id import int_gid_or_none, str_gid_or_none
from schema.refusals import refusals_as
from schema.shipping import CartSelectedDeliveryOptionUpdateInput

Action = Callable[[str, int | None], Awaitable[None]]


@strawberry.type
class CartQuery:
    @strawberry.field(description="A cart by id; null when it does not exist or is not yours.")
    async def cart(self, info: Info, id: strawberry.ID) -> Cart | None:
        info.context.mark_private()
        cart_id = str_gid_or_none(id, "Cart")
        if cart_id is None:
            return None
        cart = await info.context.carts.get(cart_id, await info.context.viewer_id())
        return None if cart is None else await build_cart(info, cart)


@strawberry.type
class CartMutation:
    @strawberry.mutation(
        description="A new cart; with an access token it belongs to that customer and starts "
        "with their default address as its shipping address."
    )
    @refusals_as(CartPayload)
    async def cart_create(self, info: Info, input: CartCreateInput) -> CartPayload:
        viewer_id = await info.context.viewer_id()
        lines = _lines(input.lines)
        buyer = input.buyer_identity
        email = buyer.email if buyer else None
        country = buyer.country_code if buyer else None
        cart_id = await info.context.carts.create(lines, email, country, viewer_id)
        return await _payload(info, cart_id, viewer_id, None)

    @strawberry.mutation(description="Add lines; a variant already in the cart adds to its line.")
    async def cart_lines_add(self, info: Info, input: CartLinesAddInput) -> CartPayload:
        carts = info.context.carts
        return await _mutate(
            info,
            input.cart_id,
            lambda cart_id, viewer: carts.add_lines(cart_id, _lines(input.lines), viewer),
        )

    @strawberry.mutation(description="Set line quantities; 0 removes the line.")
    async def cart_lines_update(self, info: Info, input: CartLinesUpdateInput) -> CartPayload:
        carts = info.context.carts

        async def update(cart_id: str, viewer: int | None) -> None:
            lines = [
                CartLine(_line_id(line.id, ("lines", str(i), "id")), line.quantity)
                for i, line in enumerate(input.lines)
            ]
            await carts.update_lines(cart_id, lines, viewer)

        return await _mutate(info, input.cart_id, update)

    @strawberry.mutation
    async def cart_lines_remove(self, info: Info, input: CartLinesRemoveInput) -> CartPayload:
        carts = info.context.carts

        async def remove(cart_id: str, viewer: int | None) -> None:
            ids = [
                _line_id(line_id, ("lineIds", str(i))) for i, line_id in enumerate(input.line_ids)
            ]
            await carts.remove_lines(cart_id, ids, viewer)

        return await _mutate(info, input.cart_id, remove)

    @strawberry.mutation(
        description="Set the buyer's email and country; with customerAccessToken, give the cart "
        "to that customer and merge their open cart into it. A customer's cart without a "
        "shipping address gets their default address."
    )
    async def cart_buyer_identity_update(
        self, info: Info, input: CartBuyerIdentityUpdateInput
    ) -> CartPayload:
        context, identity = info.context, input.buyer_identity
        customer = None
        if identity.customer_access_token is not None:
            customer = await context.accounts.customer_for(identity.customer_access_token)
            if customer is None:
                error = DomainUserError(
                    UserErrorCode.INVALID_ACCESS_TOKEN,
                    "the access token is unknown or expired",
                    ("buyerIdentity", "customerAccessToken"),
                )
                return await _refused(info, input.cart_id, Rejected([error]))

        async def update(cart_id: str, viewer: int | None) -> None:
            if customer is not None:
                viewer = customer.id
            if identity.email is not None or identity.country_code is not None:
                await context.carts.update_buyer(
                    cart_id, viewer, identity.email, identity.country_code
                )
            if customer is not None:
                await context.carts.attach(cart_id, customer.id, customer.email, viewer)
            if viewer is not None:
                await context.carts.prefill_address(cart_id, viewer)

        return await _mutate(
            info, input.cart_id, update, as_customer=customer.id if customer else None
        )

    @strawberry.mutation(description="Set the shipping address (validated).")
    async def cart_shipping_address_update(
        self, info: Info, input: CartShippingAddressUpdateInput
    ) -> CartPayload:
        carts = info.context.carts
        address = MailingAddress(**dataclasses.asdict(input.address))
        return await _mutate(
            info,
            input.cart_id,
            lambda cart_id, viewer: carts.update_address(cart_id, address, viewer),
        )

    @strawberry.mutation(
        description="Choose one of the cart's deliveryOptions by its handle; the cheapest "
        "applies until one is chosen, and again once the chosen one no longer does."
    )
    async def cart_selected_delivery_option_update(
        self, info: Info, input: CartSelectedDeliveryOptionUpdateInput
    ) -> CartPayload:
        carts = info.context.carts
        return await _mutate(
            info,
            input.cart_id,
            lambda cart_id, viewer: carts.select_delivery_option(cart_id, input.handle, viewer),
        )

    @strawberry.mutation(
        description="Replace the cart's gift cards with the ones these codes open (at most "
        "5); any refused code refuses them all and the cart keeps what it had. Failed "
        "look-ups are throttled per client (THROTTLED). Checkout debits them: "
        "cost.checkoutChargeAmount is what they leave for the card to pay."
    )
    async def cart_gift_card_codes_update(
        self, info: Info, input: CartGiftCardCodesUpdateInput
    ) -> CartPayload:
        carts, client = info.context.carts, info.context.client_address
        return await _mutate(
            info,
            input.cart_id,
            lambda cart_id, viewer: carts.update_gift_card_codes(
                cart_id, input.gift_card_codes, viewer, client, datetime.now(UTC)
            ),
        )

    @strawberry.mutation(
        description="Replace the cart's discount codes (at most 5, case-insensitive). A "
        "code that does not apply now is kept (it may apply once the cart changes): it "
        "comes back in userErrors with why (at its index in discountCodes) and in "
        "cart.discountCodes with applicable false. Text that cannot be a code refuses the "
        "whole list and the cart keeps what it had."
    )
    async def cart_discount_codes_update(
        self, info: Info, input: CartDiscountCodesUpdateInput
    ) -> CartPayload:
        carts = info.context.carts
        payload = await _mutate(
            info,
            input.cart_id,
            lambda cart_id, viewer: carts.update_discount_codes(
                cart_id, input.discount_codes, viewer
            ),
        )
        if payload.cart is None or payload.user_errors:
            return payload
        refused = [
            UserError(
                field=["discountCodes", str(index)],
                code=code.reason,
                message=DISCOUNT_REFUSALS[code.reason],
            )
            for index, code in enumerate(payload.cart.discount_codes)
            if code.reason is not None
        ]
        return CartPayload(cart=payload.cart, user_errors=refused)


async def _mutate(
    info: Info, cart_gid: strawberry.ID, action: Action, *, as_customer: int | None = None
) -> CartPayload:
    viewer_id = as_customer if as_customer is not None else await info.context.viewer_id()
    cart_id = str_gid_or_none(cart_gid, "Cart")
    if cart_id is None:
        return CartPayload(cart=None, user_errors=UserError.all(_not_found()))
    try:
        await action(cart_id, viewer_id)
    except Rejected as rejected:
        return await _payload(info, cart_id, viewer_id, rejected)
    return await _payload(info, cart_id, viewer_id, None)


async def _refused(info: Info, cart_gid: strawberry.ID, rejected: Rejected) -> CartPayload:
    cart_id = str_gid_or_none(cart_gid, "Cart")
    if cart_id is None:
        return CartPayload(cart=None, user_errors=UserError.all(rejected))
    return await _payload(info, cart_id, await info.context.viewer_id(), rejected)


async def _payload(
    info: Info, cart_id: str, viewer_id: int | None, rejected: Rejected | None
) -> CartPayload:
    cart = await info.context.carts.get(cart_id, viewer_id)
    return CartPayload(
        cart=None if cart is None else await build_cart(info, cart),
        user_errors=UserError.all(rejected),
    )


def _lines(lines: list[CartLineInput]) -> list[CartLine]:
    decoded, errors = [], []
    for index, line in enumerate(lines):
        variant_id = int_gid_or_none(line.variant_id, "ProductVariant")
        if variant_id is None:
            errors.append(
                DomainUserError(
                    UserErrorCode.INVALID_MERCHANDISE,
                    "this variant does not exist or is not for sale",
                    ("lines", str(index), "variantId"),
                )
            )
        else:
            decoded.append(CartLine(variant_id, line.quantity))
    if errors:
        raise Rejected(errors)
    return decoded


def _line_id(value: strawberry.ID, field: tuple[str, ...]) -> int:
    variant_id = int_gid_or_none(value, "CartLine")
    if variant_id is None:
        raise Rejected(
            [DomainUserError(UserErrorCode.LINE_NOT_FOUND, "no such line in this cart", field)]
        )
    return variant_id


def _not_found() -> Rejected:
    return Rejected.one(UserErrorCode.CART_NOT_FOUND, "no such cart", "cartId")
