"""What the consumers do with real events: one confirmation per paid order (recorded,
or mailed through a real SMTP server), low-stock alerts, search reindexing and cache
invalidation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import select

from app import build_event_worker
from domain.events import CacheInvalidation, SearchIndexing
from domain.notifications import OrderConfirmations
from integrations.sandbox_gateway import SandboxGateway
from persistence.catalog.variant_owners import SqlVariantOwners
from persistence.db import Database
from persistence.events.consumer import ConsumerPolicy, StreamConsumer
from persistence.events.relay import OutboxRelay, stream_of
from persistence.pii import PiiCipher
from persistence.redis.record_cache import RecordCache
from persistence.tables import notifications
from settings import Settings
from tests.client import AppClient, running_app
from tests.conftest import TEST_PII_KEY
from tests.events import FAST, RecordingIndexWriter, consume_until, emit_rows, forget_published
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import ready_cart
from tests.smtp_sink import Inbox, free_port, smtp_sink

CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id number status totalPrice: cost { totalAmount { amount } } } userErrors { code } } }"""


_free_port = free_port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(settings, gateway=SandboxGateway()) as client:
        yield client


async def _paid_order(client: AppClient, db: Database) -> tuple[dict[str, Any], MadeProduct]:
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    cart_id = await ready_cart(client, [(mug, 2)])
    result = await client.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": "events-paid-order",
                "paymentMethod": "pm_card_visa",
            }
        },
    )
    placed = result.data["checkoutComplete"]
    assert placed["userErrors"] == [] and placed["order"]["status"] == "PAID"
    return placed["order"], mug


async def _confirmations(db: Database) -> list[Any]:
    async with db.reader.connect() as connection:
        return list(
            (
                await connection.execute(
                    select(notifications).where(notifications.c.kind == "order_confirmation")
                )
            ).mappings()
        )


def _consumer(client: AppClient, handler_name: str) -> StreamConsumer:
    worker = build_event_worker(client.container)
    [consumer] = [c for c in worker.consumers if c.group == handler_name]
    return consumer


async def _relay_order_paid_twice(db: Database, redis: Redis) -> None:
    relay = OutboxRelay(db, redis)
    await relay.drain()
    await forget_published(db, "OrderPaid")  # as if the relay died before its commit
    await relay.drain()
    assert await redis.xlen(stream_of("OrderPaid")) == 2


async def test_a_paid_order_gets_exactly_one_confirmation_even_when_relayed_twice(
    shop: AppClient, db: Database, redis: Redis
) -> None:
    order, _mug = await _paid_order(shop, db)
    await _relay_order_paid_twice(db, redis)
    consumer = _consumer(shop, "notifications")

    await consume_until(consumer, lambda: _confirmations(db))
    await consumer.poll_once()
    handler = consumer.handler
    assert isinstance(handler, OrderConfirmations)
    public_id = (await _confirmations(db))[0]["key"]
    await handler.confirm(public_id)  # a repeat the dedupe keys missed: still one

    [row] = await _confirmations(db)
    assert row["status"] == "recorded"  # no SMTP_URL: the row is the notification
    assert row["subject"] == f"Order {order['number']} confirmed"
    body = PiiCipher([TEST_PII_KEY]).decrypt(row["body_encrypted"])
    assert row["body"] is None  # encrypted at rest: a body can carry a token or an address
    assert "2 x Mug - Size 0 (MUG-0)  24.00 USD" in body
    assert f"Total     {order['totalPrice']['totalAmount']['amount']} USD" in body
    assert PiiCipher([TEST_PII_KEY]).decrypt(row["recipient_encrypted"]) == "ann@example.com"
    assert "ann@example.com" not in str(dict(row))  # encrypted at rest, like the order


async def test_with_smtp_a_paid_order_mails_exactly_one_confirmation(
    settings: Settings, db: Database, redis: Redis, clean: None, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    mailing = settings.model_copy(
        update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{port}"), "mail_from": "orders@shop.test"}
    )
    async with running_app(mailing, gateway=SandboxGateway()) as client:
        order, _mug = await _paid_order(client, db)
        await _relay_order_paid_twice(db, redis)
        consumer = _consumer(client, "notifications")
        await consume_until(consumer, lambda: inbox.envelopes)
        await consumer.poll_once()
        await asyncio.sleep(0.1)  # room for a second mail, were there one

    [envelope] = inbox.envelopes
    assert envelope.mail_from == "orders@shop.test" and envelope.rcpt_tos == ["ann@example.com"]
    mail = message_from_bytes(envelope.original_content or b"")
    assert mail["Subject"] == f"Order {order['number']} confirmed"
    assert order["number"] in mail.get_payload()
    [row] = await _confirmations(db)
    assert row["status"] == "sent" and row["sent_at"] is not None


async def test_when_the_mail_server_is_down_the_claim_is_released_for_a_retry(
    settings: Settings, db: Database, redis: Redis, clean: None
) -> None:
    down = settings.model_copy(update={"smtp_url": SecretStr(f"smtp://127.0.0.1:{_free_port()}")})
    async with running_app(down, gateway=SandboxGateway()) as client:
        await _paid_order(client, db)
        await OutboxRelay(db, redis).drain()
        consumer = _consumer(client, "notifications")
        await consumer.ensure_groups()

        assert await consumer.poll_once() == 1

    assert await _confirmations(db) == []  # nothing claimed: the retry can send it
    summary = await redis.xpending(stream_of("OrderPaid"), "notifications")
    assert summary["pending"] == 1  # left for a reclaim


async def test_low_stock_alerts_once_per_fall_below_the_threshold(
    shop: AppClient, db: Database, redis: Redis
) -> None:
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
    variant = mug.variant_ids[0]
    levels = [9, 5, 2, 0, 8, 4, 3]  # falls to 5, recovers to 8, falls to 4
    await emit_rows(db, "StockChanged", [{"variant": variant, "available": n} for n in levels])
    await OutboxRelay(db, redis).drain()
    consumer = _consumer(shop, "low-stock-alerts")
    await consumer.ensure_groups()

    assert await consumer.poll_once() == len(levels)

    async with db.reader.connect() as connection:
        rows = (
            await connection.execute(
                select(notifications.c.key, notifications.c.body_encrypted, notifications.c.status)
                .where(notifications.c.kind == "low_stock")
                .order_by(notifications.c.id)
            )
        ).all()
    cipher = PiiCipher([TEST_PII_KEY])
    assert [(cipher.decrypt(row.body_encrypted), row.status) for row in rows] == [
        (f"Variant {variant} has 5 left (threshold 5).", "recorded"),
        (f"Variant {variant} has 4 left (threshold 5).", "recorded"),
    ]
    assert rows[0].key.startswith(f"variant:{variant}#")  # closed by the restock
    assert rows[1].key == f"variant:{variant}"  # open: further falls add nothing


async def test_the_search_indexer_reindexes_each_touched_product_once_per_batch(
    db: Database, redis: Redis, clean: None
) -> None:
    make = CatalogFactory(db)
    mug, pen, cup = [await make.product(title) for title in ("Mug", "Pen", "Cup")]
    await emit_rows(db, "ProductUpdated", [{"product": mug.id, "slug": mug.slug}])
    await emit_rows(db, "VariantUpdated", [{"variant": pen.variant_ids[0], "product": pen.id}])
    await emit_rows(
        db,
        "StockChanged",
        [{"variant": v, "available": 1} for v in (cup.variant_ids[0], mug.variant_ids[0])],
    )
    await OutboxRelay(db, redis).drain()
    writer = RecordingIndexWriter()
    indexing = SearchIndexing(writer, SqlVariantOwners(db))
    consumer = StreamConsumer(redis, indexing, ConsumerPolicy(**FAST))
    await consumer.ensure_groups()

    assert await consumer.poll_once() == 4

    assert writer.calls == [sorted([mug.id, pen.id, cup.id])]


async def test_the_cache_invalidator_drops_the_changed_records_only(
    db: Database, redis: Redis, clean: None
) -> None:
    cache = RecordCache(redis, ttl_seconds=60, namespace="ns", retry_after_seconds=1)
    keys = ["ns:product:1", "ns:product-variants:1", "ns:product-slug:mug", "ns:variant:11"]
    kept = ["ns:product:2", "ns:variant:22", "ns:product-slug:pen"]
    for key in keys + kept:
        await redis.set(key, b"cached")
    await emit_rows(db, "ProductUpdated", [{"product": 1, "slug": "mug"}])
    await emit_rows(db, "VariantUpdated", [{"variant": 11, "product": 1}])
    await OutboxRelay(db, redis).drain()
    consumer = StreamConsumer(redis, CacheInvalidation(cache), ConsumerPolicy(**FAST))
    await consumer.ensure_groups()

    assert await consumer.poll_once() == 2

    assert await redis.exists(*keys) == 0
    assert await redis.exists(*kept) == len(kept)
