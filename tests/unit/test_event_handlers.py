"""Event handlers with in-memory fakes of their ports: payload checks, one confirmation
per order, low-stock crossings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from domain.addresses import MailingAddress
from domain.events import CacheInvalidation, Event, MalformedEvent, SearchIndexing
from domain.notifications import (
    LowStockAlerts,
    NotificationKind,
    NotificationStatus,
    OrderConfirmations,
    order_confirmation,
)
from domain.order_status import StatusTokens
from domain.orders import GiftCardDebit, Order, OrderDiscountAllocation, OrderLine, OrderStatus
from tests.fakes.catalog import FakeCacheInvalidator, FakeProductsOfVariants
from tests.fakes.notifications import FakeMailer, FakeNotificationStore, FakeOrdersByPublicId
from tests.fakes.search_index import FakeSearchIndex

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TOKENS = StatusTokens(b"unit-test-status-token-key-0123456789")


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


def test_the_confirmation_shows_discounts_and_gift_cards_and_adds_up() -> None:
    order = replace(
        an_order(), discount_total=840, shipping_method_title="Standard", gift_card_total=1_000
    )
    order = replace(order, total=order.subtotal - 840 + order.shipping + order.tax)
    allocations = [
        OrderDiscountAllocation(1, 3, "Welcome", "WELCOME10", 240),
        OrderDiscountAllocation(1, 4, "Mug sale", None, 300),
        OrderDiscountAllocation(2, 4, "Mug sale", None, 300),
        OrderDiscountAllocation(None, 5, "Ships free", "SHIPFREE", 0),
    ]
    cards = [GiftCardDebit(9, "WXYZ", 1_000)]

    body = order_confirmation(order, "tok", None, allocations, cards).body

    assert "  Subtotal  24.00 USD" in body
    assert "  Discount  -2.40 USD  Welcome (WELCOME10)" in body
    assert "  Discount  -6.00 USD  Mug sale" in body
    assert "Ships free" not in body  # it took nothing off
    assert "  Shipping  5.99 USD (Standard)" in body
    assert "  Total     21.59 USD" in body
    assert "  Gift card ...WXYZ  -10.00 USD" in body
    assert "  Charged   11.59 USD" in body


def paid(event_id: int, order: str = "pub_7") -> Event:
    return Event(event_id, "OrderPaid", {"order": order, "payment": "pi_1"})


def test_a_confirmation_lists_the_lines_and_totals_in_the_order_currency() -> None:
    message = order_confirmation(an_order("JPY"), "tok", None)

    assert message.to == "ann@example.com" and message.subject == "Order #1007 confirmed"
    assert "2 x Mug (MUG-0)  2400 JPY" in message.body and "Total     2999 JPY" in message.body
    assert "Follow your order: status token tok" in message.body


def test_a_confirmation_links_to_the_storefront_status_page_when_there_is_one() -> None:
    message = order_confirmation(an_order(), "tok", "https://shop.example/")

    assert "Follow your order: https://shop.example/orders/status?token=tok" in message.body


async def test_the_mailed_token_is_the_one_derived_for_the_order() -> None:
    store, mailer = FakeNotificationStore(), FakeMailer()

    await OrderConfirmations(FakeOrdersByPublicId([an_order()]), store, mailer, TOKENS).handle(
        [paid(1)]
    )

    assert TOKENS.token_for("pub_7") in mailer.sent[0].body


async def test_a_paid_order_is_mailed_once_however_often_its_event_comes() -> None:
    store, mailer = FakeNotificationStore(), FakeMailer()
    confirmations = OrderConfirmations(FakeOrdersByPublicId([an_order()]), store, mailer, TOKENS)

    await confirmations.handle([paid(1), paid(1), paid(2)])

    assert [m.subject for m in mailer.sent] == ["Order #1007 confirmed"]
    assert [row[3] for row in store.rows.values()] == [NotificationStatus.SENT]


async def test_a_failed_send_releases_the_claim_so_a_retry_can_send() -> None:
    store, mailer = FakeNotificationStore(), FakeMailer(fail=True)
    confirmations = OrderConfirmations(FakeOrdersByPublicId([an_order()]), store, mailer, TOKENS)

    with pytest.raises(ConnectionError):
        await confirmations.handle([paid(1)])
    assert store.rows == {}
    mailer.fail = False
    await confirmations.handle([paid(1)])

    assert len(mailer.sent) == 1


async def test_without_a_mailer_the_confirmation_is_recorded_and_unknown_orders_skipped() -> None:
    store = FakeNotificationStore()

    await OrderConfirmations(FakeOrdersByPublicId([an_order()]), store, None, TOKENS).handle(
        [paid(1), paid(2, "no-such-order")]
    )

    [(kind, key, _message, status)] = store.rows.values()
    assert (kind, key, status) == (
        NotificationKind.ORDER_CONFIRMATION,
        "pub_7",
        NotificationStatus.RECORDED,
    )


async def test_an_order_cancelled_before_its_event_was_read_is_not_confirmed() -> None:
    store, mailer = FakeNotificationStore(), FakeMailer()

    await OrderConfirmations(
        FakeOrdersByPublicId([replace(an_order(), status=OrderStatus.CANCELLED)]),
        store,
        mailer,
        TOKENS,
    ).handle([paid(1)])

    assert store.rows == {} and mailer.sent == []


async def test_low_stock_alerts_follow_the_crossings_in_event_order() -> None:
    store = FakeNotificationStore()
    events = [
        Event(i, "StockChanged", {"variant": 3, "available": n})
        for i, n in enumerate([6, 2, 1, 9, 0], 1)
    ]

    await LowStockAlerts(store, threshold=2).handle(list(reversed(events)))  # sorted by id

    assert [(key, message.body) for _k, key, message, _s in store.rows.values()] == [
        ("variant:3#1", "Variant 3 has 2 left (threshold 2)."),
        ("variant:3", "Variant 3 has 0 left (threshold 2)."),
    ]


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
        await CacheInvalidation(FakeCacheInvalidator()).handle(
            [Event(1, "ProductUpdated", payload)]
        )


async def test_cache_invalidation_batches_products_slugs_and_variants() -> None:
    cache = FakeCacheInvalidator()

    await CacheInvalidation(cache).handle(
        [
            Event(1, "ProductUpdated", {"product": 2, "slug": "pen", "previous_slug": "biro"}),
            Event(2, "VariantCreated", {"variant": 20, "product": 1}),
            Event(3, "ProductArchived", {"product": 1, "slug": "mug"}),
        ]
    )

    # A renamed product's old slug goes too, or `product(slug: "biro")` would live on.
    assert cache.calls == [("products", [1, 2], ["biro", "mug", "pen"]), ("variants", [20], [])]


async def test_search_indexing_reindexes_each_touched_product_once_per_batch() -> None:
    writer = FakeSearchIndex("postgres")

    await SearchIndexing(writer, FakeProductsOfVariants({31: 3, 72: 7})).handle(
        [
            Event(1, "ProductUpdated", {"product": 3, "slug": "pen"}),
            Event(2, "StockChanged", {"variant": 31, "available": 0}),
            Event(3, "ReviewCreated", {"product": 5, "review": 9}),
            Event(4, "StockChanged", {"variant": 72, "available": 4}),
        ]
    )

    assert writer.index_calls == [[3, 5, 7]]
