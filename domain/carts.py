"""Carts: lines of variants, the buyer, the address, and what it all costs.

A cart lives in a `CartStore` (Redis) and holds only variant ids and quantities;
prices, titles and stock are always read live from the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from domain.addresses import MailingAddress, check_address, check_country
from domain.catalog import Category, InventoryLevel, Product, Variant
from domain.customers import normalize_email
from domain.discounts import (
    NO_DISCOUNTS,
    DiscountContext,
    DiscountResult,
    apply_discounts,
    discountable_lines,
    normalize_codes,
)
from domain.errors import Rejected, UserError, UserErrorCode
from domain.gift_card_desk import GiftCardDesk
from domain.shipping import (
    HANDLE_MAX,
    Shipping,
    ShippingMethod,
    choose,
    default_zone_methods,
)
from domain.shipping import delivery_options as applicable_methods
from domain.text_input import is_clean

MAX_QUANTITY = 999
MAX_LINES = 100


@dataclass(frozen=True, slots=True)
class CartLine:
    variant_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Cart:
    id: str
    owner_id: int | None
    email: str | None
    country_code: str | None
    shipping_address: MailingAddress | None
    lines: tuple[CartLine, ...]
    created_at: datetime
    updated_at: datetime
    # The handle of the delivery option the shopper picked (see domain.shipping).
    delivery_handle: str | None = None
    # The gift cards applied (ids, in the order applied; never their codes).
    gift_card_ids: tuple[int, ...] = ()
    # The discount codes entered (canonical, in the order entered; see domain.discounts).
    discount_codes: tuple[str, ...] = ()

    @property
    def destination_country(self) -> str | None:
        """Where it ships: the address's country, else the buyer's."""
        if self.shipping_address is not None:
            return self.shipping_address.country_code
        return self.country_code

    def visible_to(self, customer_id: int | None) -> bool:
        """A guest cart's id is its capability; a customer's cart needs that customer."""
        return self.owner_id is None or self.owner_id == customer_id


class CartStoreError(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    QUANTITY = "QUANTITY"
    TOO_MANY_LINES = "TOO_MANY_LINES"
    LINE_NOT_FOUND = "LINE_NOT_FOUND"


class CartStore(Protocol):
    """Every write is atomic and refuses as a whole: a refused write changes nothing."""

    async def create(
        self,
        owner_id: int | None,
        email: str | None,
        country_code: str | None,
        lines: Sequence[CartLine],
    ) -> str: ...

    async def get(self, cart_id: str) -> Cart | None: ...

    async def add(self, cart_id: str, lines: Sequence[CartLine]) -> CartStoreError | None: ...

    async def set_quantities(
        self, cart_id: str, lines: Sequence[CartLine]
    ) -> CartStoreError | None: ...

    async def remove(self, cart_id: str, variant_ids: Sequence[int]) -> CartStoreError | None: ...

    async def set_buyer(
        self, cart_id: str, email: str | None, country_code: str | None
    ) -> CartStoreError | None: ...

    async def set_address(self, cart_id: str, address: MailingAddress) -> CartStoreError | None: ...

    async def set_delivery_handle(self, cart_id: str, handle: str) -> CartStoreError | None: ...

    async def set_gift_card_ids(self, cart_id: str, ids: Sequence[int]) -> CartStoreError | None:
        """Replaces the applied gift cards; none clears them."""
        ...

    async def set_discount_codes(self, cart_id: str, codes: Sequence[str]) -> CartStoreError | None:
        """Replaces the entered discount codes; none clears them."""
        ...

    async def delete(self, cart_id: str) -> None: ...

    async def attach(self, cart_id: str, customer_id: int, email: str) -> CartStoreError | None:
        """Give a guest cart to a customer, merging in the customer's open cart if any."""
        ...


class DefaultAddresses(Protocol):
    async def default_address(self, customer_id: int) -> MailingAddress | None:
        """The customer's default address book entry, if they have one."""
        ...


class Merchandise(Protocol):
    async def variants(self, ids: Sequence[int]) -> Mapping[int, Variant]: ...

    async def products(self, ids: Sequence[int]) -> Mapping[int, Product]: ...

    async def categories(self, ids: Sequence[int]) -> Mapping[int, Category]:
        """The categories with these ids (their paths name their ancestors)."""
        ...


# -- input checks ---------------------------------------------------------------------


def merge_line_inputs(lines: Sequence[CartLine], field: str = "lines") -> list[CartLine]:
    """One line per variant (repeats add up), each quantity 1..999, at most 100 lines."""
    errors: list[UserError] = []
    totals: dict[int, int] = {}
    for index, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_QUANTITY:
            errors.append(_quantity_error(field, index))
        totals[line.variant_id] = totals.get(line.variant_id, 0) + line.quantity
    if not errors:
        for index, line in enumerate(lines):
            if totals[line.variant_id] > MAX_QUANTITY:
                errors.append(_quantity_error(field, index))
                break
    if len(totals) > MAX_LINES:
        errors.append(
            UserError(
                UserErrorCode.TOO_MANY_LINES, f"a cart holds at most {MAX_LINES} lines", (field,)
            )
        )
    if errors:
        raise Rejected(errors)
    return [CartLine(variant_id, quantity) for variant_id, quantity in totals.items()]


def _quantity_error(field: str, index: int) -> UserError:
    return UserError(
        UserErrorCode.INVALID_QUANTITY,
        f"quantity must be between 1 and {MAX_QUANTITY}",
        (field, str(index), "quantity"),
    )


async def check_merchandise(
    merchandise: Merchandise, lines: Sequence[CartLine], field: str = "lines"
) -> None:
    """Every variant exists and belongs to a product on sale."""
    variants = await merchandise.variants([line.variant_id for line in lines])
    products = await merchandise.products(list({v.product_id for v in variants.values()}))
    errors = []
    for index, line in enumerate(lines):
        variant = variants.get(line.variant_id)
        product = products.get(variant.product_id) if variant else None
        if variant is None or product is None or not product.is_visible:
            errors.append(
                UserError(
                    UserErrorCode.INVALID_MERCHANDISE,
                    "this variant does not exist or is not for sale",
                    (field, str(index), "variantId"),
                )
            )
    if errors:
        raise Rejected(errors)


# -- cost and warnings ----------------------------------------------------------------


class WarningCode(StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    VARIANT_UNAVAILABLE = "VARIANT_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class CartWarning:
    code: WarningCode
    variant_id: int
    available_quantity: int
    message: str


@dataclass(frozen=True, slots=True)
class PricingRules:
    currency_code: str
    shipping_flat_rate: int
    free_shipping_threshold: int
    # Basis points per ISO country (2000 = 20%); countries not listed pay no tax.
    tax_rates: Mapping[str, int] = field(default_factory=dict)

    def tax_rate(self, country_code: str | None) -> int:
        return self.tax_rates.get(country_code or "", 0)


@dataclass(frozen=True, slots=True)
class PricedLine:
    line: CartLine
    variant: Variant | None
    unit_price: int
    subtotal: int


@dataclass(frozen=True, slots=True)
class CartCost:
    """subtotal - discount + shipping + tax = total. `shipping` is the delivery option's
    price; a free-shipping discount is part of `discount`. Tax is on what is paid for:
    the discounted lines and the discounted shipping."""

    subtotal: int
    shipping: int
    tax: int
    total: int
    currency_code: str
    discount: int = 0


@dataclass(frozen=True, slots=True)
class PricedCart:
    cart: Cart
    lines: tuple[PricedLine, ...]
    cost: CartCost
    warnings: tuple[CartWarning, ...]
    total_quantity: int
    # What it may ship by (empty without lines or a destination country), cheapest first,
    # and the option charged: the selected one while available, else the cheapest.
    delivery_options: tuple[ShippingMethod, ...] = ()
    delivery: ShippingMethod | None = None
    discounts: DiscountResult = NO_DISCOUNTS

    @property
    def checkout_ready(self) -> bool:
        return bool(
            self.lines
            and not self.warnings
            and self.cart.email
            and self.cart.shipping_address is not None
            and self.delivery is not None
        )


def price_cart(
    cart: Cart,
    variants: Mapping[int, Variant],
    products: Mapping[int, Product],
    stock: Mapping[int, InventoryLevel | None],
    rules: PricingRules,
    shipping_methods: Sequence[ShippingMethod] | None = None,
    discounts: DiscountContext | None = None,
) -> PricedCart:
    """Live prices, shipping, discounts and tax in integer minor units; unsaleable lines
    cost nothing and carry a warning. `shipping_methods` are the destination's
    (domain.shipping's `Shipping.methods_for`); None means the default zone made from the
    flat rate. Without `discounts` nothing is taken off (and the entered codes are not
    judged). Shipping methods are chosen by the subtotal before discounts."""
    priced: list[PricedLine] = []
    warnings: list[CartWarning] = []
    for line in cart.lines:
        variant = variants.get(line.variant_id)
        product = products.get(variant.product_id) if variant else None
        if variant is None or product is None or not product.is_visible:
            priced.append(PricedLine(line, variant, 0, 0))
            warnings.append(
                CartWarning(
                    WarningCode.VARIANT_UNAVAILABLE, line.variant_id, 0, "no longer for sale"
                )
            )
            continue
        priced.append(PricedLine(line, variant, variant.price, variant.price * line.quantity))
        level = stock.get(variant.id)
        available = 0 if level is None else level.available
        if available <= 0:
            warnings.append(CartWarning(WarningCode.OUT_OF_STOCK, variant.id, 0, "out of stock"))
        elif available < line.quantity:
            message = f"only {available} left"
            warnings.append(
                CartWarning(WarningCode.INSUFFICIENT_STOCK, variant.id, available, message)
            )
    subtotal = sum(p.subtotal for p in priced)
    if shipping_methods is None:
        shipping_methods = default_zone_methods(
            rules.shipping_flat_rate, rules.free_shipping_threshold
        )
    country = cart.destination_country
    applicable = applicable_methods(shipping_methods, subtotal) if cart.lines else ()
    # Without a destination nothing can be chosen, but the cheapest gives an estimate.
    options = applicable if country is not None else ()
    delivery = choose(applicable, cart.delivery_handle if options else None)
    shipping = 0 if subtotal == 0 or delivery is None else delivery.price
    taken = NO_DISCOUNTS
    if discounts is not None:
        taken = apply_discounts(
            discountable_lines(priced, products, discounts.categories),
            shipping,
            discounts.candidates,
            cart.discount_codes,
            discounts.now,
            discounts.used_by_buyer,
        )
    taxable = subtotal + shipping - taken.total_discount
    tax = _percent_of(taxable, rules.tax_rate(country))
    cost = CartCost(
        subtotal, shipping, tax, taxable + tax, rules.currency_code, taken.total_discount
    )
    quantity = sum(line.quantity for line in cart.lines)
    return PricedCart(
        cart,
        tuple(priced),
        cost,
        tuple(warnings),
        quantity,
        options,
        delivery if options else None,
        taken,
    )


def _percent_of(amount: int, basis_points: int) -> int:
    # Half up, in integers: no float ever touches money.
    return (amount * basis_points + 5_000) // 10_000


# -- use cases --------------------------------------------------------------------------


class Carts:
    def __init__(
        self,
        store: CartStore,
        merchandise: Merchandise,
        default_addresses: DefaultAddresses | None = None,
        *,
        pricing: PricingRules | None = None,
        shipping: Shipping | None = None,
        gift_cards: GiftCardDesk | None = None,
    ) -> None:
        self._gift_cards = gift_cards
        self._store = store
        self._merchandise = merchandise
        self._default_addresses = default_addresses
        self._pricing = pricing
        self._shipping = shipping

    async def get(self, cart_id: str, viewer_id: int | None) -> Cart | None:
        cart = await self._store.get(cart_id)
        return cart if cart is not None and cart.visible_to(viewer_id) else None

    async def create(
        self,
        lines: Sequence[CartLine],
        email: str | None,
        country_code: str | None,
        viewer_id: int | None,
    ) -> str:
        merged = merge_line_inputs(lines)
        if email is not None:
            email = normalize_email(email, "buyerIdentity.email")
        if country_code is not None:
            country_code = check_country(country_code, ("buyerIdentity", "countryCode"))
        await check_merchandise(self._merchandise, merged)
        cart_id = await self._store.create(viewer_id, email, country_code, merged)
        if viewer_id is not None:
            await self._prefill(cart_id, viewer_id)
        return cart_id

    async def add_lines(
        self, cart_id: str, lines: Sequence[CartLine], viewer_id: int | None
    ) -> None:
        await self._require(cart_id, viewer_id)
        merged = merge_line_inputs(lines)
        await check_merchandise(self._merchandise, merged)
        _raise_for(await self._store.add(cart_id, merged))

    async def update_lines(
        self, cart_id: str, lines: Sequence[CartLine], viewer_id: int | None
    ) -> None:
        await self._require(cart_id, viewer_id)
        errors = [
            _quantity_error("lines", i)
            for i, line in enumerate(lines)
            if not 0 <= line.quantity <= MAX_QUANTITY
        ]
        if len({line.variant_id for line in lines}) != len(lines):
            errors.append(UserError(UserErrorCode.INVALID, "each line may appear once", ("lines",)))
        if errors:
            raise Rejected(errors)
        _raise_for(await self._store.set_quantities(cart_id, lines))

    async def remove_lines(
        self, cart_id: str, variant_ids: Sequence[int], viewer_id: int | None
    ) -> None:
        await self._require(cart_id, viewer_id)
        _raise_for(await self._store.remove(cart_id, variant_ids))

    async def update_buyer(
        self,
        cart_id: str,
        viewer_id: int | None,
        email: str | None,
        country_code: str | None,
    ) -> None:
        await self._require(cart_id, viewer_id)
        if email is not None:
            email = normalize_email(email, "buyerIdentity.email")
        if country_code is not None:
            country_code = check_country(country_code, ("buyerIdentity", "countryCode"))
        _raise_for(await self._store.set_buyer(cart_id, email, country_code))

    async def attach(
        self, cart_id: str, customer_id: int, customer_email: str, viewer_id: int | None
    ) -> None:
        cart = await self._require(cart_id, viewer_id)
        if not cart.visible_to(customer_id):
            raise _not_found()
        _raise_for(await self._store.attach(cart_id, customer_id, cart.email or customer_email))

    async def update_address(
        self, cart_id: str, address: MailingAddress, viewer_id: int | None
    ) -> None:
        await self._require(cart_id, viewer_id)
        _raise_for(await self._store.set_address(cart_id, check_address(address)))

    async def select_delivery_option(
        self, cart_id: str, handle: str, viewer_id: int | None
    ) -> None:
        """Pick one of the cart's delivery options now (the cart's lines, subtotal and
        destination decide which exist). The choice is re-checked on every read and at
        checkout: once it no longer applies, the cheapest does."""
        cart = await self._require(cart_id, viewer_id)
        if not is_clean(handle, HANDLE_MAX):
            raise _option_not_available()
        assert self._pricing is not None and self._shipping is not None, "wire pricing"
        variants = await self._merchandise.variants([line.variant_id for line in cart.lines])
        products = await self._merchandise.products(list({v.product_id for v in variants.values()}))
        methods = await self._shipping.methods_for(cart.destination_country)
        priced = price_cart(cart, variants, products, {}, self._pricing, methods)
        if all(option.handle != handle for option in priced.delivery_options):
            raise _option_not_available()
        _raise_for(await self._store.set_delivery_handle(cart_id, handle))

    async def update_gift_card_codes(
        self,
        cart_id: str,
        codes: Sequence[str],
        viewer_id: int | None,
        client: str,
        now: datetime,
    ) -> None:
        """Replace the cart's gift cards with the ones these codes open; a refused code
        refuses them all (the cart keeps what it had). Nothing is debited here: checkout
        does not use gift cards yet."""
        await self._require(cart_id, viewer_id)
        assert self._gift_cards is not None, "wire gift cards"
        ids = await self._gift_cards.cards_for_codes(codes, client, now)
        _raise_for(await self._store.set_gift_card_ids(cart_id, ids))

    async def update_discount_codes(
        self, cart_id: str, codes: Sequence[str], viewer_id: int | None
    ) -> None:
        """Replace the cart's discount codes (canonical, without repeats, at most 5). A
        code that does not apply is kept, and the cart's discountCodes say why: it may
        apply once the cart changes. A string that cannot be a code refuses them all."""
        await self._require(cart_id, viewer_id)
        _raise_for(await self._store.set_discount_codes(cart_id, normalize_codes(codes)))

    async def prefill_address(self, cart_id: str, customer_id: int) -> None:
        """A customer's own cart without a shipping address gets their default address; a
        cart that has one keeps it, and a guest cart is never given a customer's address
        (its id may be in other hands)."""
        cart = await self._store.get(cart_id)
        if cart is not None and cart.owner_id == customer_id and cart.shipping_address is None:
            await self._prefill(cart_id, customer_id)

    async def _prefill(self, cart_id: str, customer_id: int) -> None:
        if self._default_addresses is None:
            return
        address = await self._default_addresses.default_address(customer_id)
        if address is not None:
            _raise_for(await self._store.set_address(cart_id, address))

    async def _require(self, cart_id: str, viewer_id: int | None) -> Cart:
        cart = await self.get(cart_id, viewer_id)
        if cart is None:
            raise _not_found()
        return cart


def _not_found() -> Rejected:
    return Rejected.one(UserErrorCode.CART_NOT_FOUND, "no such cart", "cartId")


def _option_not_available() -> Rejected:
    return Rejected.one(
        UserErrorCode.DELIVERY_OPTION_NOT_AVAILABLE,
        "this delivery option is not one of the cart's deliveryOptions",
        "handle",
    )


def _raise_for(error: CartStoreError | None) -> None:
    if error is None:
        return
    if error is CartStoreError.NOT_FOUND:
        raise _not_found()
    if error is CartStoreError.QUANTITY:
        raise Rejected.one(
            UserErrorCode.INVALID_QUANTITY, f"a line holds at most {MAX_QUANTITY} units", "lines"
        )
    if error is CartStoreError.TOO_MANY_LINES:
        raise Rejected.one(
            UserErrorCode.TOO_MANY_LINES, f"a cart holds at most {MAX_LINES} lines", "lines"
        )
    raise Rejected.one(UserErrorCode.LINE_NOT_FOUND, "no such line in this cart", "lineIds")
