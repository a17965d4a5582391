"""An in-memory `CartStore` (with the Redis store's refusals: a refused write changes
nothing) and a `Merchandise` catalog of products and variants.

`FakeCartStore.down` makes every call raise ConnectionError, as a Redis outage does."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from domain.addresses import MailingAddress
from domain.carts import MAX_LINES, MAX_QUANTITY, Cart, CartLine, CartStoreError
from domain.catalog import Category, Product, Variant
from tests.fakes.catalog import a_product, a_variant

if TYPE_CHECKING:
    from domain.carts import CartStore, Merchandise

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class FakeCartStore:
    def __init__(self) -> None:
        self.carts: dict[str, Cart] = {}
        self.down = False

    async def create(
        self,
        owner_id: int | None,
        email: str | None,
        country_code: str | None,
        lines: Sequence[CartLine],
    ) -> str:
        self._check_up()
        cart_id = secrets.token_urlsafe(16)
        self.carts[cart_id] = Cart(
            cart_id, owner_id, email, country_code, None, tuple(lines), T0, T0
        )
        return cart_id

    async def get(self, cart_id: str) -> Cart | None:
        self._check_up()
        return self.carts.get(cart_id)

    async def add(self, cart_id: str, lines: Sequence[CartLine]) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        quantities = {line.variant_id: line.quantity for line in cart.lines}
        for line in lines:
            quantities[line.variant_id] = quantities.get(line.variant_id, 0) + line.quantity
        return self._store(cart, quantities)

    async def set_quantities(
        self, cart_id: str, lines: Sequence[CartLine]
    ) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        quantities = {line.variant_id: line.quantity for line in cart.lines}
        if any(line.variant_id not in quantities for line in lines):
            return CartStoreError.LINE_NOT_FOUND
        for line in lines:
            quantities[line.variant_id] = line.quantity
        return self._store(cart, {v: q for v, q in quantities.items() if q > 0})

    async def remove(self, cart_id: str, variant_ids: Sequence[int]) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        quantities = {line.variant_id: line.quantity for line in cart.lines}
        if any(v not in quantities for v in variant_ids):
            return CartStoreError.LINE_NOT_FOUND
        return self._store(cart, {v: q for v, q in quantities.items() if v not in variant_ids})

    async def set_buyer(
        self, cart_id: str, email: str | None, country_code: str | None
    ) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        self.carts[cart_id] = replace(
            cart,
            email=cart.email if email is None else email,
            country_code=cart.country_code if country_code is None else country_code,
        )
        return None

    async def set_address(self, cart_id: str, address: MailingAddress) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        self.carts[cart_id] = replace(cart, shipping_address=address)
        return None

    async def set_delivery_handle(self, cart_id: str, handle: str) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        self.carts[cart_id] = replace(cart, delivery_handle=handle)
        return None

    async def set_gift_card_ids(self, cart_id: str, ids: Sequence[int]) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        self.carts[cart_id] = replace(cart, gift_card_ids=tuple(ids))
        return None

    async def set_discount_codes(self, cart_id: str, codes: Sequence[str]) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        self.carts[cart_id] = replace(cart, discount_codes=tuple(codes))
        return None

    async def delete(self, cart_id: str) -> None:
        self._check_up()
        self.carts.pop(cart_id, None)

    async def attach(self, cart_id: str, customer_id: int, email: str) -> CartStoreError | None:
        self._check_up()
        cart = self.carts.get(cart_id)
        if cart is None:
            return CartStoreError.NOT_FOUND
        quantities = {line.variant_id: line.quantity for line in cart.lines}
        open_carts = [
            c for c in self.carts.values() if c.owner_id == customer_id and c.id != cart_id
        ]
        for other in open_carts:
            for line in other.lines:
                quantities[line.variant_id] = quantities.get(line.variant_id, 0) + line.quantity
        error = self._store(replace(cart, owner_id=customer_id, email=email), quantities)
        if error is None:
            for other in open_carts:
                del self.carts[other.id]
        return error

    def _store(self, cart: Cart, quantities: Mapping[int, int]) -> CartStoreError | None:
        if any(q > MAX_QUANTITY for q in quantities.values()):
            return CartStoreError.QUANTITY
        if len(quantities) > MAX_LINES:
            return CartStoreError.TOO_MANY_LINES
        lines = tuple(CartLine(v, q) for v, q in quantities.items())
        self.carts[cart.id] = replace(cart, lines=lines)
        return None

    def _check_up(self) -> None:
        if self.down:
            raise ConnectionError("redis is down")


class FakeMerchandise:
    """Products and variants by id; `add_product` makes a product with one variant."""

    def __init__(self) -> None:
        self.product_records: dict[int, Product] = {}
        self.variant_records: dict[int, Variant] = {}
        self.category_records: dict[int, Category] = {}

    def add_product(self, product_id: int, title: str, price: int, currency: str = "USD") -> int:
        """A visible product with one "Default" variant of the same id; returns that id."""
        self.product_records[product_id] = a_product(product_id, title, price, currency)
        self.variant_records[product_id] = a_variant(product_id, product_id, price, currency)
        return product_id

    async def variants(self, ids: Sequence[int]) -> Mapping[int, Variant]:
        return {i: self.variant_records[i] for i in ids if i in self.variant_records}

    async def products(self, ids: Sequence[int]) -> Mapping[int, Product]:
        return {i: self.product_records[i] for i in ids if i in self.product_records}

    async def categories(self, ids: Sequence[int]) -> Mapping[int, Category]:
        return {i: self.category_records[i] for i in ids if i in self.category_records}


if TYPE_CHECKING:
    _cart_store: CartStore = FakeCartStore()
    _merchandise: Merchandise = FakeMerchandise()
