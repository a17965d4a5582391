"""Event handlers with in-memory fakes of their ports: payload checks, one confirmation
per order, low-stock crossings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from domain.carts import MailingAddress
from domain.events import CacheInvalidation, Event, MalformedEvent, SearchIndexing
from domain.notifications import (
    LowStockAlerts,
    Message,
    NotificationKind,
    NotificationStatus,
    OrderConfirmations,
    order_confirmation,
)
from domain.orders import Order, OrderLine, OrderStatus

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def an_order(currency: str = "USD") -> Order:
    return Order(
        id=7,
        public_id="pub_7",
        customer_id=None,
        cart_id="cart",
        status=OrderStatus.PAID,
        currency_code=currency,
        subtotal=2400,
        shipping=599,
        tax=0,
        total=2999,
        email="ann@example.com",
        shipping_address=MailingAddress(
            "Ann", "Lee", "1 Main St", "", "Berlin", "", "10115", "DE", ""
        ),
        payment_method="pm_card_visa",
        payment_id="pi_1",
        card_brand="visa",
        card_last4="4242",
        decline_code=None,
        lines=(OrderLine(1, 1, "MUG-0", "Mug", 1200, 2),),
        created_at=T0,
        updated_at=T0,
    )


class Orders:
    def __init__(self, status: OrderStatus = OrderStatus.PAID) -> None:
        self.status = status

    async def by_public_id(self, public_id: str) -> Order | None:
        return replace(an_order(), status=self.status) if public_id == "pub_7" else None


class Store:
    def __init__(self) -> None:
        self.rows: dict[int, tuple[NotificationKind, str, Message, NotificationStatus]] = {}

    async def claim(
        self, kind: NotificationKind, key: str, message: Message, status: NotificationStatus
    ) -> int | None:
        if any((k, q) == (kind, key) for k, q, _m, _s in self.rows.values()):
            return None
        notification_id = len(self.rows) + 1
        self.rows[notification_id] = (kind, key, message, status)
        return notification_id

    async def settle(self, notification_id: int, status: NotificationStatus) -> None:
        kind, key, message, _status = self.rows[notification_id]
        self.rows[notification_id] = (kind, key, message, status)

    async def release(self, notification_id: int) -> None:
        del self.rows[notification_id]

    async def close(self, kind: NotificationKind, key: str) -> None:
        for notification_id, (k, q, message, status) in list(self.rows.items()):
            if (k, q) == (kind, key):
                self.rows[notification_id] = (k, f"{q}#{notification_id}", message, status)


class Mailer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Message] = []
        self.fail = fail

    async def send(self, message: Message) -> None:
        if self.fail:
            raise ConnectionError("mail server down")
        self.sent.append(message)


def paid(event_id: int, order: str = "pub_7") -> Event:
    return Event(event_id, "OrderPaid", {"order": order, "payment": "pi_1"})


def test_a_confirmation_lists_the_lines_and_totals_in_the_order_currency() -> None:
    message = order_confirmation(an_order("JPY"))

    assert message.to == "ann@example.com" and message.subject == "Order #1007 confirmed"
    assert "2 x Mug (MUG-0)  2400 JPY" in message.body and "Total     2999 JPY" in message.body


async def test_a_paid_order_is_mailed_once_however_often_its_event_comes() -> None:
    store, mailer = Store(), Mailer()
    confirmations = OrderConfirmations(Orders(), store, mailer)

    await confirmations.handle([paid(1), paid(1), paid(2)])

    assert [m.subject for m in mailer.sent] == ["Order #1007 confirmed"]
    assert [row[3] for row in store.rows.values()] == [NotificationStatus.SENT]


async def test_a_failed_send_releases_the_claim_so_a_retry_can_send() -> None:
    store, mailer = Store(), Mailer(fail=True)
    confirmations = OrderConfirmations(Orders(), store, mailer)

    with pytest.raises(ConnectionError):
        await confirmations.handle([paid(1)])
    assert store.rows == {}
    mailer.fail = False
    await confirmations.handle([paid(1)])

    assert len(mailer.sent) == 1


async def test_without_a_mailer_the_confirmation_is_recorded_and_unknown_orders_skipped() -> None:
    store = Store()

    await OrderConfirmations(Orders(), store, None).handle([paid(1), paid(2, "no-such-order")])

    [(kind, key, _message, status)] = store.rows.values()
    assert (kind, key, status) == (
        NotificationKind.ORDER_CONFIRMATION,
        "pub_7",
        NotificationStatus.RECORDED,
    )


async def test_an_order_cancelled_before_its_event_was_read_is_not_confirmed() -> None:
    store, mailer = Store(), Mailer()

    await OrderConfirmations(Orders(OrderStatus.CANCELLED), store, mailer).handle([paid(1)])

    assert store.rows == {} and mailer.sent == []


async def test_low_stock_alerts_follow_the_crossings_in_event_order() -> None:
    store = Store()
    events = [
        Event(i, "StockChanged", {"variant": 3, "available": n})
        for i, n in enumerate([6, 2, 1, 9, 0], 1)
    ]

    await LowStockAlerts(store, threshold=2).handle(list(reversed(events)))  # sorted by id

    assert [(key, message.body) for _k, key, message, _s in store.rows.values()] == [
        ("variant:3#1", "Variant 3 has 2 left (threshold 2)."),
        ("variant:3", "Variant 3 has 0 left (threshold 2)."),
    ]


class Cache:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int], list[str]]] = []

    async def invalidate_products(self, product_ids: list[int], slugs: Sequence[str] = ()) -> None:
        self.calls.append(("products", product_ids, list(slugs)))

    async def invalidate_variants(self, variant_ids: list[int]) -> None:
        self.calls.append(("variants", variant_ids, []))

    async def invalidate_categories(self, category_ids: list[int]) -> None:
        self.calls.append(("categories", category_ids, []))


@pytest.mark.parametrize(
    "payload",
    [
        {"product": "1", "slug": "mug"},
        {"product": True, "slug": "mug"},
        {"slug": "mug"},
        {"product": 1, "slug": ""},
    ],
)
async def test_a_payload_without_what_its_topic_promises_is_malformed(
    payload: dict[str, object],
) -> None:
    with pytest.raises(MalformedEvent):
        await CacheInvalidation(Cache()).handle([Event(1, "ProductUpdated", payload)])


async def test_cache_invalidation_batches_products_slugs_and_variants() -> None:
    cache = Cache()

    await CacheInvalidation(cache).handle(
        [
            Event(1, "ProductUpdated", {"product": 2, "slug": "pen", "previous_slug": "biro"}),
            Event(2, "VariantCreated", {"variant": 20, "product": 1}),
            Event(3, "ProductArchived", {"product": 1, "slug": "mug"}),
        ]
    )

    # A renamed product's old slug goes too, or `product(slug: "biro")` would live on.
    assert cache.calls == [("products", [1, 2], ["biro", "mug", "pen"]), ("variants", [20], [])]


class Writer:
    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    async def index_products(self, product_ids: Sequence[int]) -> int:
        self.calls.append(list(product_ids))
        return len(product_ids)


class Owners:
    async def products_of_variants(self, variant_ids: Sequence[int]) -> dict[int, int]:
        return {variant_id: variant_id // 10 for variant_id in variant_ids}


async def test_search_indexing_reindexes_each_touched_product_once_per_batch() -> None:
    writer = Writer()

    await SearchIndexing(writer, Owners()).handle(
        [
            Event(1, "ProductUpdated", {"product": 3, "slug": "pen"}),
            Event(2, "StockChanged", {"variant": 31, "available": 0}),
            Event(3, "ReviewCreated", {"product": 5, "review": 9}),
            Event(4, "StockChanged", {"variant": 72, "available": 4}),
        ]
    )

    assert writer.calls == [[3, 5, 7]]
