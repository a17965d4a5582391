"""The checkout state machine (domain/checkout.py) driven through in-memory fakes of its
ports, no I/O: each test is one path a buyer can take through checkoutComplete, and
asserts what the buyer sees (order status, userError codes), what the bank sees (the
charges that took money, their idempotency keys) and what the shelf holds (stock).

The same paths run on PostgreSQL and Redis in tests/integration/test_checkout*.py; here
they are fast and each branch is reached deliberately (a crash, a hang, a busy key)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from domain.addresses import MailingAddress
from domain.carts import CartLine, PricingRules
from domain.checkout import Checkout, CheckoutInput, CheckoutOutcome, CheckoutPolicy
from domain.errors import UserErrorCode
from domain.order_status import StatusTokens
from domain.orders import OrderStatus
from domain.payments import ChargeUnknown
from tests.fakes.carts import FakeCartStore, FakeMerchandise
from tests.fakes.idempotency import FakeIdempotencyStore
from tests.fakes.orders import FakeOrderStore
from tests.fakes.payments import FakePaymentGateway, GatewayCrash

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADDRESS = MailingAddress("Ann", "Lee", "1 Main St", "", "Berlin", "", "10115", "DE", "")
MUG, LAMP = 1, 2  # variant ids (one variant per product, same id)
POLICY = CheckoutPolicy(
    lock_seconds=30, wait_seconds=0.1, reservation_minutes=30, gateway_timeout_seconds=0.1
)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Shop:
    """One store wired from fakes: a mug at 12.00 (5 in stock), a lamp at 30.00 (1)."""

    policy: CheckoutPolicy = POLICY
    carts: FakeCartStore = field(default_factory=FakeCartStore)
    catalog: FakeMerchandise = field(default_factory=FakeMerchandise)
    keys: FakeIdempotencyStore = field(default_factory=FakeIdempotencyStore)
    gateway: FakePaymentGateway = field(default_factory=FakePaymentGateway)
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.catalog.add_product(MUG, "Mug", 1200)
        self.catalog.add_product(LAMP, "Lamp", 3000)
        self.orders = FakeOrderStore({MUG: 5, LAMP: 1}, keys=self.keys)
        self.checkout = Checkout(
            self.carts,
            self.catalog,
            self.orders,
            self.keys,
            self.gateway,
            PricingRules("USD", shipping_flat_rate=599, free_shipping_threshold=10_000),
            self.policy,
            StatusTokens(b"unit-test-status-token-key-0123456789"),
            clock=self.clock,
        )

    async def cart(self, *lines: tuple[int, int], owner: int | None = None) -> str:
        cart_id = await self.carts.create(
            owner, "ann@example.com", "DE", [CartLine(v, q) for v, q in lines]
        )
        await self.carts.set_address(cart_id, ADDRESS)
        return cart_id

    async def pay(
        self,
        cart_id: str,
        key: str = "key-0001",
        method: str = "pm_card_visa",
        viewer: int | None = None,
    ) -> CheckoutOutcome:
        return await self.checkout.complete(CheckoutInput(cart_id, key, method), viewer)


def codes(outcome: CheckoutOutcome) -> list[UserErrorCode]:
    return [error.code for error in outcome.errors]


async def test_a_new_key_places_the_order_charges_once_and_clears_the_cart() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 2))

    outcome = await shop.pay(cart_id)

    assert outcome.errors == [] and outcome.order is not None
    assert outcome.order.status is OrderStatus.PAID
    assert outcome.order.total == 2 * 1200 + 599
    assert [(c.amount, c.idempotency_key) for c in shop.gateway.charged] == [
        (2999, f"order-{outcome.order.public_id}-charge")
    ]
    assert shop.orders.stock[MUG] == 3
    assert await shop.carts.get(cart_id) is None


async def test_the_same_key_again_replays_the_order_without_a_second_charge() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1))
    first = await shop.pay(cart_id)

    again = await shop.pay(cart_id)

    assert again.errors == [] and again.order is not None and first.order is not None
    assert again.order.id == first.order.id and again.order.status is OrderStatus.PAID
    assert len(shop.gateway.requests) == 1
    assert shop.orders.stock[MUG] == 4


async def test_the_same_key_for_another_request_is_refused_and_changes_nothing() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1))
    await shop.pay(cart_id, method="pm_card_chargeDeclined")

    other = await shop.pay(cart_id, method="pm_card_visa")

    assert other.order is None and codes(other) == [UserErrorCode.IDEMPOTENCY_KEY_REUSED]
    assert shop.gateway.charged == [] and len(shop.orders.orders) == 1


async def test_a_duplicate_while_the_first_is_charging_gets_checkout_in_progress() -> None:
    shop = Shop(policy=CheckoutPolicy(wait_seconds=0.1, gateway_timeout_seconds=5))
    cart_id = await shop.cart((MUG, 1))
    shop.gateway.hang = asyncio.Event()
    first = asyncio.create_task(shop.pay(cart_id))
    await shop.gateway.calls_started.wait()

    duplicate = await shop.pay(cart_id)  # waits its 0.1 s, the first still holds the key
    shop.gateway.hang.set()
    done = await first

    assert duplicate.order is None and codes(duplicate) == [UserErrorCode.CHECKOUT_IN_PROGRESS]
    assert done.order is not None and done.order.status is OrderStatus.PAID
    assert len(shop.gateway.requests) == 1 and shop.orders.stock[MUG] == 4


async def test_a_duplicate_that_outwaits_the_first_gets_the_first_order() -> None:
    shop = Shop(policy=CheckoutPolicy(wait_seconds=5, gateway_timeout_seconds=5))
    cart_id = await shop.cart((MUG, 1))
    shop.gateway.hang = asyncio.Event()
    first = asyncio.create_task(shop.pay(cart_id))
    await shop.gateway.calls_started.wait()

    duplicate = asyncio.create_task(shop.pay(cart_id))
    await asyncio.sleep(0.05)  # the duplicate is polling the busy key
    shop.gateway.hang.set()
    done, replayed = await first, await duplicate

    assert done.order is not None and replayed.order is not None
    assert replayed.errors == [] and replayed.order.id == done.order.id
    assert len(shop.gateway.requests) == 1 and shop.orders.stock[MUG] == 4


async def test_after_a_crash_past_the_charge_the_retry_resumes_and_money_moves_once() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1))
    shop.gateway.crash_after_charge = True  # charged, then the process died
    with pytest.raises(GatewayCrash):
        await shop.pay(cart_id)
    shop.gateway.crash_after_charge = False

    early = await shop.pay(cart_id)  # the dead holder's lock has not lapsed yet
    shop.clock.advance(POLICY.lock_seconds + 1)
    resumed = await shop.pay(cart_id)

    assert codes(early) == [UserErrorCode.CHECKOUT_IN_PROGRESS]
    assert resumed.errors == [] and resumed.order is not None
    assert resumed.order.status is OrderStatus.PAID and len(shop.orders.orders) == 1
    keys = {r.idempotency_key for r in shop.gateway.requests}
    assert len(shop.gateway.requests) == 2 and len(keys) == 1  # the same charge, re-sent
    assert len(shop.gateway.charged) == 1 and shop.orders.stock[MUG] == 4


async def test_a_decline_releases_the_stock_and_says_payment_declined() -> None:
    shop = Shop()
    cart_id = await shop.cart((LAMP, 1))

    outcome = await shop.pay(cart_id, method="pm_card_chargeDeclined")

    assert outcome.order is not None and outcome.order.status is OrderStatus.PAYMENT_FAILED
    assert outcome.order.decline_code == "card_declined"
    assert codes(outcome) == [UserErrorCode.PAYMENT_DECLINED]
    assert shop.gateway.charged == [] and shop.orders.stock[LAMP] == 1
    assert await shop.carts.get(cart_id) is not None  # the buyer can try another card
    retried = await shop.pay(cart_id, key="key-0002")
    assert retried.order is not None and retried.order.status is OrderStatus.PAID
    assert shop.orders.stock[LAMP] == 0


async def test_an_unknown_outcome_leaves_the_order_pending_and_the_retry_sends_the_same_charge() -> (
    None
):
    shop = Shop()
    cart_id = await shop.cart((MUG, 1))
    shop.gateway.next_outcomes.append(ChargeUnknown("connection reset", payment_id="pi_x"))

    unknown = await shop.pay(cart_id)
    retried = await shop.pay(cart_id)  # at once: the key is not left busy

    assert unknown.order is not None and unknown.order.status is OrderStatus.PENDING_PAYMENT
    assert unknown.order.payment_id == "pi_x"
    assert codes(unknown) == [UserErrorCode.PAYMENT_PENDING]
    assert retried.order is not None and retried.order.id == unknown.order.id
    assert retried.order.status is OrderStatus.PAID and retried.errors == []
    first, second = shop.gateway.requests
    assert first == second  # same amount, same gateway idempotency key
    assert len(shop.gateway.charged) == 1 and shop.orders.stock[MUG] == 4


async def test_a_gateway_hanging_past_its_timeout_is_an_unknown_outcome() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1))
    shop.gateway.hang = asyncio.Event()  # never set: the gateway ignores its own timeout

    # Bounded here too, so a checkout that waits for the gateway fails instead of hanging.
    outcome = await asyncio.wait_for(shop.pay(cart_id), POLICY.gateway_timeout_seconds + 1)

    assert outcome.order is not None and outcome.order.status is OrderStatus.PENDING_PAYMENT
    assert codes(outcome) == [UserErrorCode.PAYMENT_PENDING]
    assert shop.orders.stock[MUG] == 4  # still reserved for the pending order
    shop.gateway.hang = None
    retried = await shop.pay(cart_id)
    assert retried.order is not None and retried.order.status is OrderStatus.PAID


async def test_a_checked_out_cart_gives_its_buyer_the_order_and_anyone_else_an_error() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1))
    paid = await shop.pay(cart_id)

    same_buyer = await shop.pay(cart_id, key="another-tab-key")
    stranger = await shop.pay(cart_id, key="stranger-key-1", viewer=42)

    assert paid.order is not None and same_buyer.order is not None
    assert same_buyer.order.id == paid.order.id and same_buyer.errors == []
    assert stranger.order is None and codes(stranger) == [UserErrorCode.CART_ALREADY_CHECKED_OUT]
    assert len(shop.gateway.requests) == 1 and shop.orders.stock[MUG] == 4


async def test_a_cart_held_by_a_pending_order_is_not_ordered_twice() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1), owner=7)
    shop.gateway.next_outcomes.append(ChargeUnknown("timeout"))
    pending = await shop.pay(cart_id, viewer=7)

    second_key = await shop.pay(cart_id, key="key-per-tap-2", viewer=7)

    assert pending.order is not None and second_key.order is not None
    assert second_key.order.id == pending.order.id and second_key.errors == []
    assert len(shop.orders.orders) == 1 and len(shop.gateway.requests) == 1
    assert shop.orders.stock[MUG] == 4


async def test_a_failure_before_the_charge_frees_the_key_for_the_retry() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1))
    shop.carts.down = True

    with pytest.raises(ConnectionError):
        await shop.pay(cart_id)
    shop.carts.down = False
    retried = await shop.pay(cart_id)  # at once, not CHECKOUT_IN_PROGRESS

    assert retried.errors == [] and retried.order is not None
    assert retried.order.status is OrderStatus.PAID
    assert len(shop.gateway.charged) == 1 and shop.orders.stock[MUG] == 4


async def test_a_connection_lost_after_placing_lets_the_retry_charge_the_placed_order() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1))
    shop.orders.fail_next_place_after_commit = True

    with pytest.raises(ConnectionResetError):
        await shop.pay(cart_id)
    retried = await shop.pay(cart_id)  # resumes at the charge, at once

    assert retried.errors == [] and retried.order is not None
    assert retried.order.status is OrderStatus.PAID and len(shop.orders.orders) == 1
    assert len(shop.gateway.charged) == 1 and shop.orders.stock[MUG] == 4


async def test_out_of_stock_names_the_line_and_frees_the_key() -> None:
    shop = Shop()
    cart_id = await shop.cart((MUG, 1), (LAMP, 2))

    short = await shop.pay(cart_id)
    await shop.carts.set_quantities(cart_id, [CartLine(LAMP, 1)])
    after_fix = await shop.pay(cart_id, key="key-0002")

    assert short.order is None and codes(short) == [UserErrorCode.OUT_OF_STOCK]
    assert short.errors[0].field == ("cart", "lines", "1")
    assert shop.keys.records.keys() == {("cart:" + cart_id, "key-0002")}
    assert after_fix.order is not None and after_fix.order.status is OrderStatus.PAID
    assert shop.orders.stock == {MUG: 4, LAMP: 0}
