"""Carts: lines of variants with live prices and stock, the buyer, the cost."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum

import strawberry

from dataloaders.catalog import settled
from domain import addresses, carts
from domain.catalog import Category
from domain.gift_cards import apply_gift_cards
from domain.money import Money as DomainMoney
from schema.catalog import ProductVariant
from schema.common import Money
from schema.context import Info
from schema.discount_allocations import CartDiscountCode, DiscountAllocation
from schema.errors import UserError, UserErrorCode
from schema.gift_cards import AppliedGiftCard
from schema.global_id import encode_gid
from schema.shipping import CartDeliveryOption


@strawberry.type(description="A postal address.")
class MailingAddress:
    first_name: str
    last_name: str
    address1: str
    address2: str
    city: str
    province: str
    zip: str
    country_code: str
    phone: str

    @classmethod
    def of(cls, address: addresses.MailingAddress) -> MailingAddress:
        return cls(**dataclasses.asdict(address))


@strawberry.type
class CartLineCost:
    amount_per_quantity: Money
    subtotal_amount: Money


@strawberry.type(description="One variant in a cart; `merchandise` is null once it is gone.")
class CartLine:
    id: strawberry.ID
    quantity: int
    merchandise: ProductVariant | None
    cost: CartLineCost
    discount_allocations: list[DiscountAllocation] = strawberry.field(
        description="What discounts take off this line: its line discount, then its share "
        "of the order discount."
    )


@strawberry.type(
    description="Integer minor units underneath: subtotalAmount - discountsAmount + "
    "shippingAmount + taxAmount = totalAmount; tax is on the discounted lines and shipping."
)
class CartCost:
    subtotal_amount: Money = strawberry.field(description="The lines before discounts.")
    discounts_amount: Money = strawberry.field(
        description="Every discount: off the lines, the order, and (free shipping) shipping."
    )
    shipping_amount: Money = strawberry.field(
        description="The selected delivery option's price, before a free-shipping discount."
    )
    tax_amount: Money
    total_amount: Money
    gift_cards_amount: Money = strawberry.field(
        description="What the applied gift cards pay of totalAmount."
    )
    checkout_charge_amount: Money = strawberry.field(
        description="totalAmount less giftCardsAmount: what the card gateway charges."
    )


@strawberry.type
class CartBuyerIdentity:
    email: str | None
    country_code: str | None


@strawberry.enum
class CartWarningCode(Enum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    VARIANT_UNAVAILABLE = "VARIANT_UNAVAILABLE"


@strawberry.type(description="Something that stops this cart from checking out as it is.")
class CartWarning:
    code: CartWarningCode
    message: str
    line_id: strawberry.ID
    available_quantity: int


@strawberry.type(description="A shopping cart. Its id is its key: keep it private.")
class Cart:
    id: strawberry.ID
    lines: list[CartLine]
    total_quantity: int
    cost: CartCost
    discount_codes: list[CartDiscountCode] = strawberry.field(
        description="The codes entered, in order, and whether each applies now."
    )
    discount_allocations: list[DiscountAllocation] = strawberry.field(
        description="What each applied discount takes off in all (lines, order, shipping); "
        "they add up to cost.discountsAmount."
    )
    applied_gift_cards: list[AppliedGiftCard] = strawberry.field(
        description="The gift cards applied, in order, with what each would pay; a card "
        "disabled or gone since pays 0 (or, gone, is left out)."
    )
    buyer_identity: CartBuyerIdentity
    shipping_address: MailingAddress | None
    checkout_ready: bool = strawberry.field(
        description="Lines, an email, an address with a delivery option, and nothing out of "
        "stock or unavailable."
    )
    warnings: list[CartWarning]
    delivery_options: list[CartDeliveryOption] = strawberry.field(
        description="How it may be delivered to the shipping address's country (else the "
        "buyer's), cheapest first; empty without lines or a country."
    )
    selected_delivery_option: CartDeliveryOption | None = strawberry.field(
        description="What cost.shippingAmount charges: the chosen option while it is "
        "available, else the cheapest; null when there is none."
    )
    created_at: datetime
    updated_at: datetime


def cart_gid(cart_id: str) -> strawberry.ID:
    return strawberry.ID(encode_gid("Cart", cart_id))


def line_gid(variant_id: int) -> strawberry.ID:
    return strawberry.ID(encode_gid("CartLine", variant_id))


async def build_cart(info: Info, cart: carts.Cart) -> Cart:
    """The cart with live catalog data: variants and products through the cached
    loaders, stock from the database, all lines in one batch each."""
    loaders = info.context.loaders
    variant_ids = [line.variant_id for line in cart.lines]
    variants = {
        v.id: v for v in await loaders.variant_by_id.load_many(variant_ids) if v is not None
    }
    product_ids = list({v.product_id for v in variants.values()})
    # Both batches are queued before either is awaited: the products' MGET and the stock
    # statement go out in the same loop turn.
    found, levels = await settled(
        loaders.product_by_id.load_many(product_ids),
        loaders.inventory_by_variant_id.load_many(list(variants)),
    )
    for failed in (found, levels):
        if isinstance(failed, Exception):
            raise failed
    products = {p.id: p for p in found if p is not None}
    stock = dict(zip(variants, levels, strict=True))
    methods = await info.context.shipping.methods_for(cart.destination_country)
    now = datetime.now(UTC)
    finder = info.context.discount_finder

    async def categories(ids: Sequence[int]) -> Mapping[int, Category]:
        found = await loaders.category_by_id.load_many(list(ids))
        return {c.id: c for c in found if c is not None}

    found = await finder.context(
        cart.discount_codes, products, categories, finder.buyer(cart.owner_id, cart.email), now
    )
    priced = carts.price_cart(cart, variants, products, stock, info.context.pricing, methods, found)
    taken = priced.discounts
    currency = priced.cost.currency_code
    applied = await info.context.gift_cards.cards(cart.gift_card_ids)
    paid = apply_gift_cards(priced.cost.total, applied, currency, now)

    def money(amount: int) -> Money:
        return Money.of(DomainMoney(amount, currency))

    lines = []
    for line in priced.lines:
        variant = line.variant
        lines.append(
            CartLine(
                id=line_gid(line.line.variant_id),
                quantity=line.line.quantity,
                merchandise=None
                if variant is None
                else ProductVariant.of(variant, stock.get(variant.id)),
                cost=CartLineCost(
                    amount_per_quantity=money(line.unit_price), subtotal_amount=money(line.subtotal)
                ),
                discount_allocations=DiscountAllocation.each(
                    taken.line_allocations.get(line.line.variant_id, ()), money
                ),
            )
        )
    return Cart(
        id=cart_gid(cart.id),
        lines=lines,
        total_quantity=priced.total_quantity,
        cost=CartCost(
            subtotal_amount=money(priced.cost.subtotal),
            discounts_amount=money(priced.cost.discount),
            shipping_amount=money(priced.cost.shipping),
            tax_amount=money(priced.cost.tax),
            total_amount=money(priced.cost.total),
            gift_cards_amount=money(paid.total_used),
            checkout_charge_amount=money(paid.remaining_due),
        ),
        discount_codes=[
            CartDiscountCode(
                code=c.code,
                applicable=c.applicable,
                reason=None if c.refusal is None else UserErrorCode(c.refusal.value),
            )
            for c in taken.codes
        ],
        discount_allocations=DiscountAllocation.per_discount(taken.all_allocations, money),
        applied_gift_cards=[
            AppliedGiftCard(
                last_characters=p.card.last_characters,
                amount_used=money(p.amount_used),
                balance=Money.of(DomainMoney(p.card.balance, p.card.currency_code)),
            )
            for p in paid.payments
            if p.card is not None
        ],
        buyer_identity=CartBuyerIdentity(email=cart.email, country_code=cart.country_code),
        shipping_address=None
        if cart.shipping_address is None
        else MailingAddress.of(cart.shipping_address),
        checkout_ready=priced.checkout_ready,
        warnings=[
            CartWarning(
                code=CartWarningCode(w.code.value),
                message=w.message,
                line_id=line_gid(w.variant_id),
                available_quantity=w.available_quantity,
            )
            for w in priced.warnings
        ],
        delivery_options=[CartDeliveryOption.of(m, currency) for m in priced.delivery_options],
        selected_delivery_option=None
        if priced.delivery is None
        else CartDeliveryOption.of(priced.delivery, currency),
        created_at=cart.created_at,
        updated_at=cart.updated_at,
    )


@strawberry.input
class CartLineInput:
    variant_id: strawberry.ID
    quantity: int = 1


@strawberry.input
class CartLineUpdateInput:
    id: strawberry.ID = strawberry.field(description="A line id; quantity 0 removes the line.")
    quantity: int


@strawberry.input
class CartBuyerIdentityInput:
    email: str | None = None
    country_code: str | None = None
    customer_access_token: str | None = strawberry.field(
        default=None,
        description="Attaches the cart to this customer, merging their open cart into it.",
    )


@strawberry.input(description="Required: firstName, lastName, address1, city, zip, countryCode.")
class MailingAddressInput:
    first_name: str = ""
    last_name: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    province: str = ""
    zip: str = ""
    country_code: str = ""
    phone: str = ""


@strawberry.input
class CartCreateInput:
    lines: list[CartLineInput] = strawberry.field(default_factory=list)
    buyer_identity: CartBuyerIdentityInput | None = None


@strawberry.input
class CartLinesAddInput:
    cart_id: strawberry.ID
    lines: list[CartLineInput]


@strawberry.input
class CartLinesUpdateInput:
    cart_id: strawberry.ID
    lines: list[CartLineUpdateInput]


@strawberry.input
class CartLinesRemoveInput:
    cart_id: strawberry.ID
    line_ids: list[strawberry.ID]


@strawberry.input
class CartBuyerIdentityUpdateInput:
    cart_id: strawberry.ID
    buyer_identity: CartBuyerIdentityInput


@strawberry.input
class CartShippingAddressUpdateInput:
    cart_id: strawberry.ID
    address: MailingAddressInput


@strawberry.type(description="The cart after the mutation (unchanged when refused).")
class CartPayload:
    cart: Cart | None
    user_errors: list[UserError]
