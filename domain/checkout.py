"""checkoutComplete: the money path of DESIGN.md.

1. Claim the idempotency key (scope: the customer, else the cart). The same key with the
   same request replays the stored result; with a different request it is refused; a
   concurrent duplicate waits, boundedly, for the first.
2. One transaction reserves stock (conditional decrements, in variant order), creates
   the order with price snapshots and writes its events.
   The order row is inserted first and claims the cart (one live order per cart), so a
   second checkout of the cart under another key gets the first order (same buyer) or
   CART_ALREADY_CHECKED_OUT, and never a second charge.
3. Charge with an idempotency key derived from the order: a retry cannot charge twice.
   The call has its own deadline inside the request's. A decline releases the stock; an
   unknown outcome (timeout) leaves the order pending and the key resumable at once, so
   the same-key retry re-sends the same charge.
4. Record the result on the key; clear the cart once paid (best effort: the order holds
   the cart anyway).

A request that fails before charging (Redis down, a lost database connection, the request
deadline) releases its claim: with no order placed the key is forgotten, with an order the
same-key retry resumes at 3 at once. One that dies during or after the charge leaves its
claim locked; once the lock lapses, a retry with the same key resumes at 3.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from domain.addresses import MailingAddress, check_address
from domain.carts import Cart, CartStore, Merchandise, PricingRules, price_cart
from domain.catalog import InventoryLevel
from domain.customers import normalize_email
from domain.discount_finder import DiscountFinder
from domain.discounts import REFUSAL_MESSAGES, Discount, code_errors
from domain.errors import Rejected, UserError, UserErrorCode
from domain.gift_card_desk import GiftCardDesk
from domain.gift_cards import apply_gift_cards, payment_errors
from domain.order_status import StatusTokens
from domain.orders import (
    CartTaken,
    GiftCardDebit,
    NewOrder,
    Order,
    OrderDiscountAllocation,
    OrderLine,
    OrderStatus,
    OrderStore,
    Payment,
    Unredeemable,
)
from domain.payments import (
    ChargeDeclined,
    ChargeInvalid,
    ChargeRequest,
    ChargeRequiresAction,
    ChargeResult,
    ChargeSucceeded,
    ChargeUnknown,
    PaymentGateway,
)
from domain.read_consistency import current_reads
from domain.shipping import Shipping

log = logging.getLogger(__name__)

KEY_MIN, KEY_MAX = 8, 255
_PAYMENT_METHOD = re.compile(r"^pm_[A-Za-z0-9_]{1,200}$")


class ClaimKind(StrEnum):
    NEW = "NEW"  # ours: go ahead
    RESUME = "RESUME"  # ours again: the first holder's lock lapsed (it crashed)
    DONE = "DONE"  # finished before: replay
    BUSY = "BUSY"  # someone is working on it right now
    MISMATCH = "MISMATCH"  # same key, different request


@dataclass(frozen=True, slots=True)
class Claim:
    kind: ClaimKind
    claim_id: int | None = None
    order_id: int | None = None
    result: dict[str, Any] | None = None


class IdempotencyStore(Protocol):
    async def claim(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        now: datetime,
        lock_seconds: float,
        ttl_seconds: int,
    ) -> Claim: ...

    async def finish(self, claim_id: int, result: dict[str, Any]) -> None: ...

    async def abandon(self, claim_id: int) -> None:
        """Forget a claim whose request changed nothing, so the key can be used again."""
        ...

    async def release(self, claim_id: int, now: datetime) -> None:
        """End a request without a result: forget the claim if no order is linked to it
        (nothing was placed), else unlock it as of `now`, so the same-key retry resumes
        at the charge with the same order instead of waiting for the lock to lapse."""
        ...

    async def delete_expired(self, now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class CheckoutInput:
    cart_id: str
    idempotency_key: str
    # None only when gift cards pay it all (MISSING_PAYMENT_METHOD otherwise).
    payment_method: str | None
    email: str | None = None
    shipping_address: MailingAddress | None = None


@dataclass(frozen=True, slots=True)
class CheckoutOutcome:
    order: Order | None
    errors: list[UserError]


@dataclass(frozen=True, slots=True)
class CheckoutPolicy:
    lock_seconds: float = 30.0
    wait_seconds: float = 5.0
    key_ttl_seconds: int = 24 * 3600
    reservation_minutes: int = 30
    # The charge's own deadline, inside the request's: past it the outcome is unknown.
    gateway_timeout_seconds: float = 6.0


class Checkout:
    def __init__(
        self,
        carts: CartStore,
        catalog: Merchandise,
        orders: OrderStore,
        keys: IdempotencyStore,
        gateway: PaymentGateway,
        pricing: PricingRules,
        policy: CheckoutPolicy,
        status_tokens: StatusTokens,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        shipping: Shipping | None = None,
        discounts: DiscountFinder | None = None,
        gift_cards: GiftCardDesk | None = None,
    ) -> None:
        self._status_tokens = status_tokens
        self._shipping = shipping
        self._discounts = discounts
        self._gift_cards = gift_cards
        self._carts = carts
        self._catalog = catalog
        self._orders = orders
        self._keys = keys
        self._gateway = gateway
        self._pricing = pricing
        self._policy = policy
        self._clock = clock

    async def complete(self, data: CheckoutInput, viewer_id: int | None) -> CheckoutOutcome:
        """The outcome; its order carries the status token, derived again on a replay
        (the shopper may never have seen the first answer). Every read of it is current
        (prices, discounts, gift cards, shipping rates): an order snapshots them."""
        with current_reads():
            outcome = await self._complete(data, viewer_id)
        if outcome.order is None:
            return outcome
        order = outcome.order
        token = self._status_tokens.token_for(order.public_id)
        if order.status is OrderStatus.PAYMENT_ACTION_REQUIRED and order.payment_action is None:
            # A replay, a resumed or a taken-cart answer: the buyer gets the same action.
            order = replace(order, payment_action=await self._orders.payment_action(order.id))
        return replace(outcome, order=replace(order, status_token=token))

    async def _complete(self, data: CheckoutInput, viewer_id: int | None) -> CheckoutOutcome:
        if not KEY_MIN <= len(data.idempotency_key) <= KEY_MAX:
            return _refused(
                UserErrorCode.INVALID,
                f"idempotencyKey must have {KEY_MIN} to {KEY_MAX} characters",
                "idempotencyKey",
            )
        scope = f"customer:{viewer_id}" if viewer_id is not None else f"cart:{data.cart_id}"
        claim = await self._claim(scope, data)
        if claim.kind is ClaimKind.MISMATCH:
            return _refused(
                UserErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this idempotency key was used for a different checkout",
                "idempotencyKey",
            )
        if claim.kind is ClaimKind.DONE:
            return await self._replay(claim.result or {})
        if claim.kind is ClaimKind.BUSY:
            return _refused(
                UserErrorCode.CHECKOUT_IN_PROGRESS,
                "this checkout is still being processed; retry with the same key",
                "idempotencyKey",
            )
        assert claim.claim_id is not None
        claim_id = claim.claim_id
        try:
            if claim.order_id is not None:  # resuming: stock is already reserved
                order = await self._orders.by_id(claim.order_id)
                assert order is not None
            else:
                placed = await self._place(claim_id, data, viewer_id)
                if isinstance(placed, CartTaken):
                    await self._keys.abandon(claim_id)  # this request wrote nothing
                    return _answer_for_taken_cart(placed.order, viewer_id)
                order = placed
        except Rejected as rejected:
            await self._keys.abandon(claim_id)
            return CheckoutOutcome(None, rejected.errors)
        except BaseException:
            # Nothing was charged: free the key (or let the retry resume) now rather than
            # leave it CHECKOUT_IN_PROGRESS for the whole lock.
            await self._release_after_failure(claim_id)
            raise
        outcome = await self._charge(order, data.payment_method)
        if outcome.order is not None and outcome.order.status is OrderStatus.PENDING_PAYMENT:
            await self._keys.release(claim_id, self._clock())  # unknown: retry resumes
        else:
            await self._keys.finish(claim_id, _result_of(outcome))
        return outcome

    async def _release_after_failure(self, claim_id: int) -> None:
        try:
            await self._keys.release(claim_id, self._clock())
        except Exception:  # the original failure matters more; the lock lapses anyway
            log.warning("could not release checkout claim %s", claim_id, exc_info=True)

    async def _claim(self, scope: str, data: CheckoutInput) -> Claim:
        fingerprint = _fingerprint(data)
        deadline = time.monotonic() + self._policy.wait_seconds
        delay = 0.02
        while True:
            claim = await self._keys.claim(
                scope,
                data.idempotency_key,
                fingerprint,
                self._clock(),
                self._policy.lock_seconds,
                self._policy.key_ttl_seconds,
            )
            if claim.kind is not ClaimKind.BUSY or time.monotonic() + delay > deadline:
                return claim
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _place(
        self, claim_id: int, data: CheckoutInput, viewer_id: int | None
    ) -> Order | CartTaken:
        cart = await self._carts.get(data.cart_id)
        if cart is None:
            # Paid carts leave Redis; the order placed from the cart still answers for it.
            # Only here, so the happy path pays nothing for the look-up.
            holder = await self._orders.holding_cart(data.cart_id)
            if holder is not None:
                return CartTaken(holder)
        if cart is None or not cart.visible_to(viewer_id):
            raise Rejected.one(UserErrorCode.CART_NOT_FOUND, "no such cart", "cartId")
        if not cart.lines:
            raise Rejected.one(UserErrorCode.CART_EMPTY, "the cart has no lines", "cartId")
        errors: list[UserError] = []
        email = data.email if data.email is not None else cart.email
        if not email:
            errors.append(UserError(UserErrorCode.MISSING_EMAIL, "an email is needed", ("email",)))
        address = data.shipping_address or cart.shipping_address
        if address is None:
            errors.append(
                UserError(
                    UserErrorCode.MISSING_SHIPPING_ADDRESS,
                    "a shipping address is needed",
                    ("shippingAddress",),
                )
            )
        if data.payment_method is not None and not _PAYMENT_METHOD.match(data.payment_method):
            errors.append(
                UserError(
                    UserErrorCode.INVALID_PAYMENT_METHOD,
                    "send a gateway payment method id (pm_...)",
                    ("paymentMethod",),
                )
            )
        if errors:
            raise Rejected(errors)
        assert email is not None and address is not None
        email = normalize_email(email)
        address = check_address(address)
        order = await self._build_order(cart, viewer_id, email, address, data.payment_method)
        if data.payment_method is None and order.total > order.gift_card_total:
            raise Rejected.one(
                UserErrorCode.MISSING_PAYMENT_METHOD,
                "a payment method is needed: the gift cards do not pay it all",
                "paymentMethod",
            )
        expires_at = self._clock() + timedelta(minutes=self._policy.reservation_minutes)
        placed = await self._orders.place(claim_id, order, expires_at)
        if isinstance(placed, list):
            raise Rejected(_out_of_stock(cart, set(placed)))
        if isinstance(placed, Unredeemable):
            raise Rejected(await self._unredeemable(cart, placed))
        return placed

    async def _unredeemable(self, cart: Cart, refused: Unredeemable) -> list[UserError]:
        """Why placing could not count a discount or debit a card (another order got
        there first): the entered code's index, or the applied card's."""
        errors: list[UserError] = []
        if refused.discount_ids:
            if self._discounts is not None:
                self._discounts.forget()  # the retry prices with what is in force now
            found = (
                await self._discounts.by_codes(cart.discount_codes)
                if self._discounts is not None
                else {}
            )
            now = self._clock()
            for index, code in enumerate(cart.discount_codes):
                discount = found.get(code)
                if discount is not None and discount.id in refused.discount_ids:
                    field = ("discountCodes", str(index))
                    errors.append(_discount_refused(discount, field, now))
            if not errors:  # an automatic discount: the shopper sees the new price
                errors.append(
                    UserError(
                        UserErrorCode.DISCOUNT_EXHAUSTED,
                        "an automatic discount ran out meanwhile; read the cart again for "
                        "its new price",
                        ("discountCodes",),
                    )
                )
        for index, card_id in enumerate(cart.gift_card_ids):
            if card_id in refused.gift_card_ids:
                errors.append(
                    UserError(
                        UserErrorCode.GIFT_CARD_BALANCE_CHANGED,
                        "this gift card's balance changed since the cart was priced; read the "
                        "cart again",
                        ("giftCardCodes", str(index)),
                    )
                )
        return errors

    async def _build_order(
        self,
        cart: Cart,
        viewer_id: int | None,
        email: str,
        address: MailingAddress,
        method: str | None,
    ) -> NewOrder:
        variant_ids = [line.variant_id for line in cart.lines]
        variants = await self._catalog.variants(variant_ids)
        products = await self._catalog.products(list({v.product_id for v in variants.values()}))
        # Stock is checked by the reservation itself; here every line counts as in stock.
        plenty = {v: InventoryLevel(v, 10**9) for v in variant_ids}
        # The cart's own rule: its chosen method while it still applies, else the
        # cheapest, read now (a method changed since the cart was shown is recorded on
        # the order as charged); no method at all for the country refuses.
        methods = (
            None
            if self._shipping is None
            else await self._shipping.methods_for(address.country_code)
        )
        now = self._clock()
        buyer: tuple[str, ...] = ()
        found = None
        if self._discounts is not None:
            buyer = self._discounts.buyer(viewer_id, email)
            # The same view of the automatic discounts as the cart's (kept in process); the
            # order transaction checks what a count depends on, and a refusal drops it.
            found = await self._discounts.context(
                cart.discount_codes, products, self._catalog.categories, buyer, now
            )
        priced = price_cart(
            replace(cart, shipping_address=address),
            variants,
            products,
            plenty,
            self._pricing,
            methods,
            found,
        )
        refusals = code_errors(priced.discounts.codes)
        if refusals:
            raise Rejected(refusals)
        unavailable = {w.variant_id for w in priced.warnings}
        if unavailable:
            raise Rejected(_out_of_stock(cart, unavailable))
        delivery = priced.delivery
        if delivery is None:
            raise Rejected.one(
                UserErrorCode.SHIPPING_NOT_AVAILABLE,
                f"we do not ship to {address.country_code} (for this cart)",
                "shippingAddress",
                "countryCode",
            )
        lines = []
        for priced_line in priced.lines:
            variant = priced_line.variant
            assert variant is not None
            product = products[variant.product_id]
            title = (
                product.title
                if variant.title == "Default"
                else f"{product.title} - {variant.title}"
            )
            lines.append(
                OrderLine(
                    variant.id,
                    product.id,
                    variant.sku,
                    title,
                    priced_line.unit_price,
                    priced_line.line.quantity,
                )
            )
        cost = priced.cost
        paid = await self._gift_card_payments(cart, cost.total, cost.currency_code, now)
        taken = priced.discounts
        allocations = [
            OrderDiscountAllocation(key, a.discount_id, a.title, a.code, a.amount)
            for key, found_allocations in taken.line_allocations.items()
            for a in found_allocations
        ]
        shipping_allocation = taken.shipping_allocation
        if shipping_allocation is not None:
            allocations.append(
                OrderDiscountAllocation(
                    None,
                    shipping_allocation.discount_id,
                    shipping_allocation.title,
                    shipping_allocation.code,
                    shipping_allocation.amount,
                )
            )
        counted = frozenset(a.discount_id for a in allocations if a.discount_id is not None)
        once = {
            d.id for d in (found.candidates if found is not None else ()) if d.once_per_customer
        }
        public_id = secrets.token_urlsafe(16)
        return NewOrder(
            public_id=public_id,
            customer_id=viewer_id,
            cart_id=cart.id,
            currency_code=cost.currency_code,
            subtotal=cost.subtotal,
            shipping=cost.shipping,
            tax=cost.tax,
            total=cost.total,
            email=email,
            shipping_address=address,
            payment_method=method or "",
            lines=tuple(lines),
            status_token_hash=self._status_tokens.hash_for(public_id),
            shipping_method_title=delivery.title,
            shipping_method_handle=delivery.handle,
            discount_total=cost.discount,
            gift_card_total=sum(d.amount for d in paid),
            discount_allocations=tuple(allocations),
            discount_ids=counted,
            redemptions=tuple((d, key) for d in sorted(counted & once) for key in buyer),
            gift_card_debits=paid,
        )

    async def _gift_card_payments(
        self, cart: Cart, total: int, currency_code: str, now: datetime
    ) -> tuple[GiftCardDebit, ...]:
        """What the cart's gift cards pay of `total`, as the cart showed it; a card that
        can no longer pay (disabled, expired, emptied) refuses the checkout, so the
        shopper sees the new amount due before paying it."""
        if not cart.gift_card_ids or self._gift_cards is None:
            return ()
        cards = await self._gift_cards.cards(cart.gift_card_ids)
        result = apply_gift_cards(total, cards, currency_code, now)
        refusals = payment_errors(result.payments)
        if refusals:
            raise Rejected(refusals)
        return tuple(
            GiftCardDebit(p.card.id, p.card.last_characters, p.amount_used)
            for p in result.payments
            if p.card is not None and p.amount_used > 0
        )

    async def _charge(self, order: Order, payment_method: str | None) -> CheckoutOutcome:
        if order.status is not OrderStatus.PENDING_PAYMENT:
            return CheckoutOutcome(order, _errors_for(order))
        if order.charge_amount == 0:  # the gift cards paid it all: nothing to charge
            settled = await self._orders.mark_paid(order, Payment(None)) or await self._reload(
                order
            )
            if settled.status is OrderStatus.PAID:
                await self._forget_cart(settled)
            return CheckoutOutcome(settled, _errors_for(settled))
        assert payment_method is not None  # checked before the order was placed
        result = await self._send_charge(
            ChargeRequest(
                order_id=order.public_id,
                amount=order.charge_amount,
                currency_code=order.currency_code,
                payment_method=payment_method,
                idempotency_key=f"order-{order.public_id}-charge",
                description=f"Order {order.number}",
            )
        )
        if isinstance(result, ChargeSucceeded):
            payment = Payment(result.payment_id, result.card_brand, result.card_last4)
            settled = await self._orders.mark_paid(order, payment) or await self._reload(order)
            if settled.status is OrderStatus.PAID:
                await self._forget_cart(settled)
            return CheckoutOutcome(settled, _errors_for(settled))
        if isinstance(result, ChargeRequiresAction):
            # 3-D Secure: the buyer's client completes it (checkoutComplete answers the
            # action); the webhook, checkoutPaymentConfirm or the reconciler settles it.
            waiting = await self._orders.require_action(
                order, result.payment_id, result.action
            ) or await self._reload(order)
            return CheckoutOutcome(waiting, _errors_for(waiting))
        if isinstance(result, ChargeDeclined | ChargeInvalid):
            code = (
                result.decline_code
                if isinstance(result, ChargeDeclined)
                else "invalid_payment_method"
            )
            payment_id = result.payment_id if isinstance(result, ChargeDeclined) else None
            failed = await self._orders.mark_failed(order, code, payment_id) or await self._reload(
                order
            )
            return CheckoutOutcome(failed, _errors_for(failed))
        if result.payment_id:
            await self._orders.set_payment_id(order.id, result.payment_id)
        current = await self._reload(order)
        pending = [PAYMENT_PENDING] if current.status is OrderStatus.PENDING_PAYMENT else []
        return CheckoutOutcome(current, pending or _errors_for(current))

    async def _send_charge(self, request: ChargeRequest) -> ChargeResult:
        """The gateway call, bounded by our own deadline: a gateway that ignores its
        timeout cannot eat the request's. Past the deadline the outcome is unknown."""
        seconds = self._policy.gateway_timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                return await self._gateway.charge(request)
        except TimeoutError:
            log.warning(
                "no answer from the gateway within %g s for order %s", seconds, request.order_id
            )
            return ChargeUnknown(f"no answer from the gateway within {seconds:g} s")

    async def _forget_cart(self, order: Order) -> None:
        """Best effort: the paid order holds the cart, so a cart left behind (Redis down)
        can never be ordered again; it expires with its TTL."""
        try:
            await self._carts.delete(order.cart_id)
        except Exception:
            log.warning(
                "could not delete the cart of paid order %s", order.public_id, exc_info=True
            )

    async def _replay(self, result: dict[str, Any]) -> CheckoutOutcome:
        order_id = result.get("order")
        order = await self._orders.by_public_id(order_id) if isinstance(order_id, str) else None
        errors = [
            UserError(UserErrorCode(e["code"]), e["message"], tuple(e["field"]))
            for e in result.get("errors", [])
        ]
        return CheckoutOutcome(order, errors)

    async def _reload(self, order: Order) -> Order:
        current = await self._orders.by_id(order.id)
        assert current is not None
        return current

    async def delete_expired_keys(self) -> int:
        return await self._keys.delete_expired(self._clock())


PAYMENT_PENDING = UserError(
    UserErrorCode.PAYMENT_PENDING,
    "the payment outcome is not known yet; retry with the same idempotency key or query the order",
    (),
)
CART_ALREADY_CHECKED_OUT = UserError(
    UserErrorCode.CART_ALREADY_CHECKED_OUT,
    "this cart has already been checked out",
    ("cartId",),
)


def _answer_for_taken_cart(holder: Order, viewer_id: int | None) -> CheckoutOutcome:
    """The same buyer gets the order the cart became, as a replay would; anyone else
    holding the cart id only learns that it is taken."""
    if holder.customer_id == viewer_id:
        return CheckoutOutcome(holder, [])
    return CheckoutOutcome(None, [CART_ALREADY_CHECKED_OUT])


def order_payment_errors(order: Order) -> list[UserError]:
    """What checkout would answer with this order: PAYMENT_DECLINED (or
    INVALID_PAYMENT_METHOD) once failed, PAYMENT_PENDING while the outcome is unknown."""
    if order.status is OrderStatus.PENDING_PAYMENT:
        return [PAYMENT_PENDING]
    return _errors_for(order)


def _errors_for(order: Order) -> list[UserError]:
    if order.status is not OrderStatus.PAYMENT_FAILED:
        return []
    if order.decline_code == "invalid_payment_method":
        return [
            UserError(
                UserErrorCode.INVALID_PAYMENT_METHOD,
                "the gateway does not know this payment method",
                ("paymentMethod",),
            )
        ]
    return [
        UserError(
            UserErrorCode.PAYMENT_DECLINED,
            f"the payment was declined ({order.decline_code}); try another payment method "
            "with a new idempotency key",
            ("paymentMethod",),
        )
    ]


def _result_of(outcome: CheckoutOutcome) -> dict[str, Any]:
    return {
        "order": outcome.order.public_id if outcome.order else None,
        "errors": [
            {"code": e.code.value, "message": e.message, "field": list(e.field)}
            for e in outcome.errors
        ],
    }


def _refused(code: UserErrorCode, message: str, field: str) -> CheckoutOutcome:
    return CheckoutOutcome(None, [UserError(code, message, (field,))])


def _fingerprint(data: CheckoutInput) -> str:
    address = data.shipping_address
    body = {
        "cart": data.cart_id,
        "payment_method": data.payment_method,
        "email": data.email,
        "address": None if address is None else list(astuple(address)),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _discount_refused(discount: Discount, field: tuple[str, ...], now: datetime) -> UserError:
    """Why a code that applied when the cart was priced could not be counted: used up
    (the usual race), unless it was deactivated or ended meanwhile."""
    code = UserErrorCode.DISCOUNT_EXHAUSTED
    if not discount.active or (discount.starts_at is not None and now < discount.starts_at):
        code = UserErrorCode.DISCOUNT_NOT_APPLICABLE
    elif discount.ends_at is not None and discount.ends_at <= now:
        code = UserErrorCode.DISCOUNT_EXPIRED
    return UserError(code, REFUSAL_MESSAGES[code], field)


def _out_of_stock(cart: Cart, variant_ids: set[int]) -> list[UserError]:
    return [
        UserError(
            UserErrorCode.OUT_OF_STOCK,
            f"not enough stock for line {index + 1}",
            ("cart", "lines", str(index)),
        )
        for index, line in enumerate(cart.lines)
        if line.variant_id in variant_ids
    ]
