"""The Subscription root: live orders, carts and product inventory.

Access is checked when a client subscribes (the same rules as the matching query) and
again on every event, so a subscription ends when its object goes away or stops being
the caller's. Each event is answered by loading the object afresh through the normal
loaders: an event costs what the same query costs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import strawberry

from domain import orders
from domain.carts import CartLine
from domain.errors import DomainError, ErrorCode
from domain.live_updates import (
    SlowConsumer,
    cart_key,
    order_key,
    product_key,
    variant_key,
)
from schema.carts import Cart, build_cart
from schema.catalog import Product, build_products
from schema.context import Context, Info, LiveSession
from schema.global_id import int_gid_or_none, str_gid_or_none
from schema.orders import Order
from schema.selection import selected_names


def _not_found(what: str, field: str) -> DomainError:
    return DomainError(f"no such {what}, or not yours", code=ErrorCode.NOT_FOUND, field=field)


def _live(context: Context) -> LiveSession:
    if context.live is None:
        raise DomainError(
            "subscriptions run over WebSocket (graphql-transport-ws) on /graphql",
            code=ErrorCode.BAD_USER_INPUT,
        )
    return context.live


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The order, each time its status moves (paid, payment action required, "
        "payment failed, fulfilled, cancelled, refunded, disputed, a return's status). For "
        "the order's customer or staff (orderId), or anyone holding its status token "
        "(statusToken): give exactly one. NOT_FOUND for any other order."
    )
    async def order_status_changed(
        self,
        info: Info,
        order_id: strawberry.ID | None = None,
        status_token: str | None = None,
    ) -> AsyncGenerator[Order, None]:
        context = info.context
        context.mark_private()
        live = _live(context)
        if (order_id is None) == (status_token is None):
            raise DomainError("give exactly one of orderId and statusToken", field="orderId")
        public_id = None if order_id is None else str_gid_or_none(order_id, "Order")
        order = await _order(context, public_id, status_token)
        if order is None:
            raise _not_found("order", "orderId" if order_id is not None else "statusToken")
        listener = live.listen([order_key(order.public_id)])
        try:
            while True:
                await listener.next()
                context.forget_loaded()
                order = await _order(context, order.public_id, status_token)
                if order is None:
                    return
                yield Order.of(order)
        except SlowConsumer:
            return
        finally:
            live.drop(listener)

    @strawberry.subscription(
        description="The cart, each time it changes (lines, buyer, address, codes) and each "
        "time stock moves for one of its lines (see `warnings`: a line running out shows "
        "before checkout). Null once the cart is gone (checked out or expired), and the "
        "subscription ends. For whoever may read the cart (a guest cart's id is its "
        "capability; a customer's cart needs their token); NOT_FOUND otherwise."
    )
    async def cart_changed(
        self, info: Info, cart_id: strawberry.ID
    ) -> AsyncGenerator[Cart | None, None]:
        context = info.context
        context.mark_private()
        live = _live(context)
        key = str_gid_or_none(cart_id, "Cart")
        viewer_id = await context.viewer_id()
        cart = None if key is None else await context.carts.get(key, viewer_id)
        if cart is None or key is None:
            raise _not_found("cart", "cartId")
        listener = live.listen(_cart_keys(key, cart.lines))
        try:
            while True:
                await listener.next()
                context.forget_loaded()
                if viewer_id is not None and await context.viewer_id() != viewer_id:
                    return  # logged out since: nothing more for this connection
                cart = await context.carts.get(key, viewer_id)
                if cart is None:
                    yield None
                    return
                live.watch(listener, _cart_keys(key, cart.lines))
                yield await build_cart(info, cart)
        except SlowConsumer:
            return
        finally:
            live.drop(listener)

    @strawberry.subscription(
        description="The product, each time the stock of one of its variants moves or its "
        "variants change (availableForSale, quantityAvailable per variant). Public; "
        "NOT_FOUND for a product a shopper cannot see. Ends when the product is archived."
    )
    async def product_inventory_changed(
        self, info: Info, product_id: strawberry.ID
    ) -> AsyncGenerator[Product, None]:
        context = info.context
        live = _live(context)
        key = int_gid_or_none(product_id, "Product")
        record = None if key is None else await context.loaders.product_by_id.load(key)
        if key is None or record is None or not await context.can_see(record):
            raise _not_found("product", "productId")
        listener = live.listen(await _product_keys(context, key))
        selection = selected_names(info)
        try:
            while True:
                await listener.next()
                context.forget_loaded()
                record = await context.loaders.product_by_id.load(key)
                if record is None or not await context.can_see(record):
                    return
                live.watch(listener, await _product_keys(context, key))
                yield (await build_products(info, [record], selection))[0]
        except SlowConsumer:
            return
        finally:
            live.drop(listener)


async def _order(
    context: Context, public_id: str | None, status_token: str | None
) -> orders.Order | None:
    if status_token is not None:
        return await context.order_status.find(status_token, context.client_address)
    if public_id is None:
        return None
    return await context.orders.get(public_id, await context.viewer())


def _cart_keys(cart_id: str, lines: Sequence[CartLine]) -> list[str]:
    return [cart_key(cart_id), *(variant_key(line.variant_id) for line in lines)]


async def _product_keys(context: Context, product_id: int) -> list[str]:
    variants = await context.loaders.variants_by_product_id.load(product_id)
    return [product_key(product_id), *(variant_key(v.id) for v in variants)]
