"""Partner webhooks end to end: a checkout's events go through the outbox, the relay, the
`webhooks` consumer group and the sender to a real HTTP receiver on loopback, signed;
failures are retried with backoff, a slow receiver holds up nobody else, private
addresses are refused at send time, and the delivery log shows each partner its own."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app import build_event_worker
from domain.events import Event
from domain.partners import NewPartner, display_prefix, hash_api_key, new_api_key
from domain.webhook_delivery import WebhookFanOut
from domain.webhooks import (
    OutgoingEvent,
    RetryPolicy,
    Webhook,
    new_signing_secret,
    verify_signature,
)
from integrations.sandbox_gateway import SandboxGateway
from integrations.webhook_http import HttpxWebhookTransport
from persistence.accounts.partners import SqlPartnerRepository
from persistence.db import Database
from persistence.events.worker import EventWorker
from persistence.pii import PiiCipher
from persistence.tables import notifications, partner_webhooks, webhook_deliveries
from persistence.webhooks.store import SqlWebhookStore
from schema.global_id import encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import TEST_PII_KEY, settings_for
from tests.events import emit_rows, eventually
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import ready_cart, staff_token
from tests.webhook_receiver import receiving

# A worker that relays, consumes and sends within tens of milliseconds, and retries
# after 0.1-0.4 s instead of 30 s-1 h.
FAST_HOOKS: dict[str, Any] = {
    "event_consumer_block_ms": 50,
    "event_relay_poll_seconds": 0.05,
    "event_claim_idle_ms": 1_000,
    "webhook_poll_seconds": 0.05,
    "webhook_retry_first_seconds": 0.1,
    "webhook_retry_max_seconds": 0.4,
    "webhook_timeout_seconds": 2.0,
    "webhook_allow_private_addresses": True,  # the receivers listen on loopback
}
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id number status } userErrors { code } } }"""
DELIVERIES = """query($first: Int, $after: String, $webhookId: ID, $status: WebhookDeliveryStatus) {
  webhookDeliveries(first: $first, after: $after, webhookId: $webhookId, status: $status) {
    edges { node { id webhookId eventId eventType status attempts lastResponseStatus
      lastError lastLatencyMs nextAttemptAt deliveredAt } }
    pageInfo { hasNextPage endCursor } } }"""


@asynccontextmanager
async def shop(
    database_url: str, redis_url: str, **overrides: Any
) -> AsyncIterator[tuple[AppClient, EventWorker]]:
    """The API and a running event worker (relay, consumers, webhook sender)."""
    settings = settings_for(database_url, redis_url, **{**FAST_HOOKS, **overrides})
    async with running_app(settings, gateway=SandboxGateway()) as client:
        worker = build_event_worker(client.container)
        await worker.start()
        try:
            yield client, worker
        finally:
            await worker.stop()


async def make_partner(db: Database, name: str) -> tuple[int, str]:
    """A partner (before the app starts, so its directory knows it): id and API key."""
    key = new_api_key()
    partner = await SqlPartnerRepository(db).create(
        NewPartner(name, False, "standard", []), hash_api_key(key), display_prefix(key)
    )
    return partner.id, key


async def make_webhook(
    db: Database, partner: str, url: str, events: list[str]
) -> tuple[Webhook, str]:
    secret = new_signing_secret()
    store = SqlWebhookStore(db, PiiCipher([TEST_PII_KEY]))
    return await store.create(partner, url, events, secret), secret


async def checkout(client: AppClient, product: MadeProduct, key: str) -> dict[str, Any]:
    cart_id = await ready_cart(client, [(product, 1)])
    result = await client.query(
        CHECKOUT,
        {"input": {"cartId": cart_id, "idempotencyKey": key, "paymentMethod": "pm_card_visa"}},
    )
    placed: dict[str, Any] = result.data["checkoutComplete"]
    assert placed["userErrors"] == [] and placed["order"]["status"] == "PAID"
    return placed


async def delivery_rows(db: Database) -> list[Any]:
    async with db.reader.connect() as connection:
        return list(
            (
                await connection.execute(
                    select(webhook_deliveries).order_by(webhook_deliveries.c.id)
                )
            ).mappings()
        )


def hmac_of(secret: str, header: str, body: bytes) -> tuple[int, str, str]:
    """(t, v1 sent, v1 recomputed here by hand, as a partner would)."""
    fields = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return timestamp, fields["v1"], expected.hexdigest()


async def test_a_paid_order_reaches_the_partner_signed_with_an_event_id_and_no_pii(
    database_url: str, shared_redis_url: str, db: Database, clean: None
) -> None:
    await make_partner(db, "Acme ERP")
    async with receiving() as receiver:
        hook, secret = await make_webhook(
            db, "Acme ERP", receiver.url, ["OrderPlaced", "OrderPaid"]
        )
        async with shop(database_url, shared_redis_url) as (client, _worker):
            mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[5])
            placed = await checkout(client, mug, "hook-paid-1")

            await eventually(lambda: len(receiver.received) == 2, seconds=10)

    paid = receiver.of_type("OrderPaid")[0]
    timestamp, sent, recomputed = hmac_of(secret, paid.headers["x-signature"], paid.body)
    assert hmac.compare_digest(sent, recomputed)
    assert abs(time.time() - timestamp) < 30
    assert verify_signature(secret, paid.headers["x-signature"], paid.body, time.time())
    assert not verify_signature("whsec_other", paid.headers["x-signature"], paid.body, time.time())
    assert not verify_signature(secret, paid.headers["x-signature"], paid.body + b" ", time.time())
    document = json.loads(paid.body)
    assert document["id"] == paid.headers["x-webhook-event-id"]
    assert document["type"] == "OrderPaid"
    assert paid.headers["content-type"] == "application/json"
    placed_event = json.loads(receiver.of_type("OrderPlaced")[0].body)
    assert placed_event["data"]["total"]["currencyCode"] == "USD"
    order_public_id = placed_event["data"]["order"]
    assert document["data"] == {"order": order_public_id}  # no gateway payment id
    for request in receiver.received:  # the buyer's email and address stay in the shop
        assert b"ann@example.com" not in request.body and b"Main St" not in request.body
    rows = await delivery_rows(db)
    assert {
        (r["webhook_id"], r["status"], r["attempts"], r["last_response_status"]) for r in rows
    } == {(hook.id, "succeeded", 1, 200)}
    assert placed["order"]["number"]


async def test_a_receiver_failing_three_times_gets_the_event_on_the_fourth_attempt(
    database_url: str, shared_redis_url: str, db: Database, clean: None
) -> None:
    await make_partner(db, "Flaky")
    mug = await CatalogFactory(db).product("Mug")

    async with receiving(lambda n: (500 if n <= 3 else 204, 0.0)) as receiver:
        hook, secret = await make_webhook(db, "Flaky", receiver.url, ["ProductUpdated"])
        async with shop(database_url, shared_redis_url) as (client, _worker):
            await emit_rows(db, "ProductUpdated", [{"product": mug.id, "slug": mug.slug}])
            await eventually(lambda: _succeeded(db), seconds=15)
            staff = await staff_token(client, db)
            log = await client.query(
                DELIVERIES, {"webhookId": encode_gid("Webhook", hook.id)}, token=staff
            )

    assert len(receiver.received) == 4
    assert len({r.headers["x-webhook-event-id"] for r in receiver.received}) == 1  # one event
    assert len({r.body for r in receiver.received}) == 1  # the same bytes every time
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    # Backoff: the n-th retry waits between half and all of 0.1 * 2^(n-1) (capped at 0.4).
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2
    [node] = [e["node"] for e in log.data["webhookDeliveries"]["edges"]]
    assert node["status"] == "SUCCEEDED" and node["attempts"] == 4
    assert node["lastResponseStatus"] == 204 and node["lastError"] is None
    assert node["lastLatencyMs"] is not None and node["deliveredAt"] is not None
    assert node["eventType"] == "ProductUpdated" and node["eventId"].startswith("evt_")
    assert verify_signature(
        secret,
        receiver.received[-1].headers["x-signature"],
        receiver.received[-1].body,
        time.time(),
    )


async def _succeeded(db: Database) -> bool:
    rows = await delivery_rows(db)
    return bool(rows) and all(r["status"] == "succeeded" for r in rows)


async def test_a_slow_receiver_holds_up_neither_other_webhooks_nor_checkout(
    database_url: str, shared_redis_url: str, db: Database, clean: None
) -> None:
    await make_partner(db, "Slow")
    await make_partner(db, "Quick")
    make = CatalogFactory(db)
    products = [await make.product(f"Mug {n}", prices=[500], stock=[50]) for n in range(6)]

    async with (
        receiving(lambda _n: (200, 30.0)) as slow,  # answers after the 1.5 s timeout
        receiving() as quick,
    ):
        await make_webhook(db, "Slow", slow.url, ["ProductUpdated", "OrderPaid"])
        await make_webhook(db, "Quick", quick.url, ["ProductUpdated", "OrderPaid"])
        async with shop(
            database_url,
            shared_redis_url,
            webhook_timeout_seconds=1.5,
            webhook_concurrency=4,
            webhook_per_webhook_concurrency=2,
        ) as (client, _worker):
            await emit_rows(
                db, "ProductUpdated", [{"product": p.id, "slug": p.slug} for p in products]
            )
            started = time.monotonic()
            await eventually(lambda: len(quick.received) == len(products), seconds=10)
            quick_took = time.monotonic() - started
            in_flight_to_slow = len(slow.received)

            checkout_started = time.monotonic()
            await checkout(client, products[0], "hook-slow-1")
            checkout_took = time.monotonic() - checkout_started
            await eventually(lambda: len(quick.of_type("OrderPaid")) == 1, seconds=10)

    assert quick_took < 1.5  # before the slow receiver's first timeout even ended
    assert in_flight_to_slow <= 2  # WEBHOOK_PER_WEBHOOK_CONCURRENCY: its share, no more
    assert checkout_took < 1.0  # checkout writes an outbox row; it never waits on a webhook
    rows = await delivery_rows(db)
    slow_rows = [r for r in rows if r["last_error"] and "timed out" in r["last_error"]]
    assert slow_rows  # the slow receiver's attempts were cut off at the timeout, and retried
    assert all(r["status"] == "pending" for r in slow_rows)


async def test_at_send_time_a_host_resolving_to_loopback_is_refused(
    database_url: str, shared_redis_url: str, db: Database, clean: None
) -> None:
    # Given a webhook stored while private addresses were allowed (or a DNS answer that
    # changed since webhook-create checked it), when the sender may not reach them:
    await make_partner(db, "Rebinder")
    mug = await CatalogFactory(db).product("Mug")
    async with receiving() as receiver:
        await make_webhook(
            db, "Rebinder", f"http://localhost:{receiver.port}/hooks", ["ProductCreated"]
        )
        async with shop(database_url, shared_redis_url, webhook_allow_private_addresses=False) as (
            _client,
            _worker,
        ):
            await emit_rows(db, "ProductCreated", [{"product": mug.id, "slug": mug.slug}])
            await eventually(lambda: _attempted(db), seconds=10)
            await asyncio.sleep(0.2)

    assert receiver.received == []  # never connected
    [row] = await delivery_rows(db)
    assert "not a public address" in row["last_error"]
    assert row["last_response_status"] is None and row["status"] == "pending"


async def _attempted(db: Database) -> bool:
    rows = await delivery_rows(db)
    return bool(rows) and rows[0]["attempts"] >= 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hooks",
        "http://localhost:{port}/hooks",
        "http://[::1]:{port}/hooks",
        "http://[::ffff:127.0.0.1]:{port}/hooks",
        "http://10.0.0.1:{port}/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:{port}/hooks",
    ],
)
async def test_the_transport_refuses_private_addresses_without_connecting(url: str) -> None:
    transport = HttpxWebhookTransport(timeout_seconds=1.0, allow_private=False, max_connections=2)
    try:
        async with receiving() as receiver:
            result = await transport.post(url.format(port=receiver.port), b"{}", {})
    finally:
        await transport.aclose()

    assert result.status_code is None and not result.succeeded
    assert result.error is not None and "public address" in result.error
    assert receiver.received == []


async def test_redirects_are_not_followed() -> None:
    transport = HttpxWebhookTransport(timeout_seconds=1.0, allow_private=True, max_connections=2)
    try:
        async with receiving(lambda _n: (302, 0.0)) as receiver:
            receiver.extra_headers["Location"] = "http://169.254.169.254/"
            result = await transport.post(receiver.url, b"{}", {})
    finally:
        await transport.aclose()

    assert result.status_code == 302 and not result.succeeded
    assert "redirects are not followed" in (result.error or "")
    assert len(receiver.received) == 1


async def test_a_webhook_failing_for_the_set_days_is_disabled_with_a_notification(
    database_url: str, shared_redis_url: str, db: Database, clean: None
) -> None:
    await make_partner(db, "Down")
    mug = await CatalogFactory(db).product("Mug")
    async with receiving(lambda _n: (503, 0.0)) as receiver:
        hook, _secret = await make_webhook(db, "Down", receiver.url, ["ProductUpdated"])
        # 1e-5 days is 0.86 s of nothing but failures.
        async with shop(database_url, shared_redis_url, webhook_disable_after_days=1e-5) as _:
            await emit_rows(db, "ProductUpdated", [{"product": mug.id, "slug": mug.slug}])
            await eventually(lambda: _disabled(db, hook.id), seconds=10)
            attempts_when_disabled = len(receiver.received)
            await asyncio.sleep(0.6)  # longer than the longest backoff
            attempts_after = len(receiver.received)

    assert attempts_when_disabled >= 2
    assert attempts_after == attempts_when_disabled  # nothing more is sent
    async with db.reader.connect() as connection:
        [note] = (
            await connection.execute(
                select(notifications).where(notifications.c.kind == "webhook_disabled")
            )
        ).mappings()
    assert note["subject"] == f"Webhook {hook.id} disabled"
    assert "webhook-enable" in PiiCipher([TEST_PII_KEY]).decrypt(note["body_encrypted"])


async def _disabled(db: Database, webhook_id: int) -> bool:
    async with db.reader.connect() as connection:
        disabled_at = (
            await connection.execute(
                select(partner_webhooks.c.disabled_at).where(partner_webhooks.c.id == webhook_id)
            )
        ).scalar_one()
    return disabled_at is not None


async def test_a_delivery_past_its_window_fails_and_a_redelivery_sends_it_again(
    database_url: str, shared_redis_url: str, db: Database, clean: None
) -> None:
    await make_partner(db, "Late")
    mug = await CatalogFactory(db).product("Mug")
    answers = {"status": 500}
    async with receiving(lambda _n: (answers["status"], 0.0)) as receiver:
        hook, _secret = await make_webhook(db, "Late", receiver.url, ["ProductUpdated"])
        async with shop(database_url, shared_redis_url, webhook_retry_window_seconds=0.5) as (
            client,
            _worker,
        ):
            await emit_rows(db, "ProductUpdated", [{"product": mug.id, "slug": mug.slug}])
            await eventually(lambda: _status(db, "failed"), seconds=10)
            tried = len(receiver.received)
            answers["status"] = 200
            requeued = await client.container.webhooks.redeliver(60, webhook_id=hook.id)
            await eventually(lambda: _status(db, "succeeded"), seconds=10)

    assert tried >= 2 and requeued == 1
    assert len({r.headers["x-webhook-event-id"] for r in receiver.received}) == 1


async def _status(db: Database, status: str) -> bool:
    rows = await delivery_rows(db)
    return bool(rows) and rows[0]["status"] == status


async def test_an_event_handled_twice_makes_one_delivery_per_webhook(
    db: Database, clean: None
) -> None:
    await make_partner(db, "Once")
    await make_webhook(
        db, "Once", "http://127.0.0.1:9/hooks", ["ProductUpdated", "ProductArchived"]
    )
    await make_webhook(db, "Once", "http://127.0.0.1:9/other", ["ProductArchived"])
    fan_out = WebhookFanOut(SqlWebhookStore(db, PiiCipher([TEST_PII_KEY])), "USD", RetryPolicy())
    events = [
        Event(1, "ProductUpdated", {"product": 1, "slug": "mug"}),
        Event(2, "ProductArchived", {"product": 1, "slug": "mug"}),
        Event(3, "StockChanged", {"variant": 1, "available": 0}),  # no partner event
    ]

    await fan_out.handle(events)
    await fan_out.handle(events)  # redelivered: at least once

    rows = await delivery_rows(db)
    assert sorted((r["webhook_id"], r["event_id"]) for r in rows) == [
        (1, "evt_1.ProductUpdated"),
        (1, "evt_2.ProductArchived"),
        (2, "evt_2.ProductArchived"),
    ]


# -- the delivery log --------------------------------------------------------------------


async def test_a_partner_sees_only_its_own_deliveries_staff_all_and_others_none(
    settings: Settings, db: Database, clean: None
) -> None:
    _acme_id, acme_key = await make_partner(db, "Acme")
    _globex_id, globex_key = await make_partner(db, "Globex")
    acme_hook, _ = await make_webhook(db, "Acme", "http://127.0.0.1:9/a", ["ProductUpdated"])
    globex_hook, _ = await make_webhook(db, "Globex", "http://127.0.0.1:9/g", ["ProductUpdated"])
    store = SqlWebhookStore(db, PiiCipher([TEST_PII_KEY]))
    await store.enqueue(
        [OutgoingEvent(f"evt_{n}.ProductUpdated", "ProductUpdated", "{}") for n in range(3)], 60
    )
    async with running_app(settings) as client:

        async def as_partner(key: str, **variables: Any) -> Any:
            response = await client.http.post(
                "/graphql",
                json={"query": DELIVERIES, "variables": variables},
                headers={"X-Api-Key": key},
            )
            return response.json()

        acme = await as_partner(acme_key, first=10)
        globex = await as_partner(globex_key, first=10)
        acme_asking_for_globex = await as_partner(
            acme_key, webhookId=encode_gid("Webhook", globex_hook.id)
        )
        staff = await staff_token(client, db)
        everything = await client.query(DELIVERIES, {"first": 10}, token=staff)
        page_one = await client.query(DELIVERIES, {"first": 4}, token=staff)
        cursor = page_one.data["webhookDeliveries"]["pageInfo"]["endCursor"]
        page_two = await client.query(DELIVERIES, {"first": 4, "after": cursor}, token=staff)
        pending = await client.query(DELIVERIES, {"status": "PENDING"}, token=staff)
        succeeded = await client.query(DELIVERIES, {"status": "SUCCEEDED"}, token=staff)
        shopper = await customer_token(client, "shopper@example.com")
        as_customer = await client.query(DELIVERIES, {}, token=shopper)
        anonymous = await client.query(DELIVERIES, {})
        too_many = await client.query(DELIVERIES, {"first": 1000}, token=staff)
        bad_id = await client.query(DELIVERIES, {"webhookId": "x" * 300}, token=staff)
        product_id = await client.query(
            DELIVERIES, {"webhookId": encode_gid("Product", 1)}, token=staff
        )
        bad_cursor = await client.query(DELIVERIES, {"after": "nonsense"}, token=staff)

    acme_nodes = [e["node"] for e in acme["data"]["webhookDeliveries"]["edges"]]
    assert len(acme_nodes) == 3
    assert {n["webhookId"] for n in acme_nodes} == {encode_gid("Webhook", acme_hook.id)}
    globex_nodes = [e["node"] for e in globex["data"]["webhookDeliveries"]["edges"]]
    assert {n["webhookId"] for n in globex_nodes} == {encode_gid("Webhook", globex_hook.id)}
    assert len(globex_nodes) == 3
    assert acme_asking_for_globex["data"]["webhookDeliveries"]["edges"] == []
    assert len(everything.data["webhookDeliveries"]["edges"]) == 6
    assert len(page_one.data["webhookDeliveries"]["edges"]) == 4
    assert page_one.data["webhookDeliveries"]["pageInfo"]["hasNextPage"] is True
    assert len(page_two.data["webhookDeliveries"]["edges"]) == 2
    seen = {
        e["node"]["id"] for p in (page_one, page_two) for e in p.data["webhookDeliveries"]["edges"]
    }
    assert len(seen) == 6
    assert len(pending.data["webhookDeliveries"]["edges"]) == 6
    assert succeeded.data["webhookDeliveries"]["edges"] == []
    assert as_customer.error_codes == ["FORBIDDEN"]
    assert anonymous.error_codes == ["UNAUTHENTICATED"]
    assert too_many.error_codes == ["INVALID_PAGE_SIZE"]
    assert bad_id.error_codes == ["INVALID_ID"]
    assert product_id.error_codes == ["INVALID_ID"]
    assert bad_cursor.error_codes == ["INVALID_CURSOR"]


async def test_concurrent_workers_never_claim_the_same_delivery(db: Database, clean: None) -> None:
    await make_partner(db, "Busy")
    hooks = [
        (await make_webhook(db, "Busy", f"http://127.0.0.1:9/{n}", ["ProductUpdated"]))[0]
        for n in range(5)
    ]
    store = SqlWebhookStore(db, PiiCipher([TEST_PII_KEY]))
    await store.enqueue(
        [OutgoingEvent(f"evt_{n}.ProductUpdated", "ProductUpdated", "{}") for n in range(40)], 60
    )  # 200 deliveries: 40 per webhook
    workers = [SqlWebhookStore(db, PiiCipher([TEST_PII_KEY])) for _ in range(4)]

    claimed: list[int] = []
    for _round in range(40):
        batches = await asyncio.gather(*(w.claim_due(15, 100, {}, 60) for w in workers))
        claimed += [d.id for batch in batches for d in batch]
        if len(claimed) >= 200:
            break

    assert len(claimed) == 200 and len(set(claimed)) == 200  # each exactly once
    assert await store.claim_due(15, 100, {}, 60) == []  # all leased
    # The per-webhook share holds within one claim and counts what is in flight.
    store_busy = await store.redeliver(60, delivery_ids=claimed)
    assert store_busy == 200
    fair = await store.claim_due(10, 2, {hooks[0].id: 2}, 60)
    per_hook = {h.id: sum(d.webhook_id == h.id for d in fair) for h in hooks}
    assert per_hook[hooks[0].id] == 0 and all(per_hook[h.id] == 2 for h in hooks[1:])


async def test_housekeeping_forgets_old_finished_deliveries_and_keeps_pending_ones(
    db: Database, clean: None
) -> None:
    await make_partner(db, "Old")
    await make_webhook(db, "Old", "http://127.0.0.1:9/", ["ProductUpdated"])
    store = SqlWebhookStore(db, PiiCipher([TEST_PII_KEY]))
    await store.enqueue(
        [OutgoingEvent(f"evt_{n}.ProductUpdated", "ProductUpdated", "{}") for n in range(4)], 60
    )
    async with db.writer.begin() as connection:
        for delivery_id, status, age_days in [(1, "succeeded", 40), (2, "failed", 40),
                                              (3, "pending", 40), (4, "succeeded", 1)]:  # fmt: skip
            await connection.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id == delivery_id)
                .values(status=status, created_at=func.now() - timedelta(days=age_days))
            )

    assert await store.delete_finished(timedelta(days=30)) == 2

    assert [r["id"] for r in await delivery_rows(db)] == [3, 4]


async def test_a_revoked_partner_hears_nothing_more(db: Database, clean: None) -> None:
    await make_partner(db, "Gone")
    await make_partner(db, "Stays")
    await make_webhook(db, "Gone", "http://127.0.0.1:9/gone", ["ProductUpdated"])
    await make_webhook(db, "Stays", "http://127.0.0.1:9/stays", ["ProductUpdated"])
    store = SqlWebhookStore(db, PiiCipher([TEST_PII_KEY]))
    await store.enqueue([OutgoingEvent("evt_1.ProductUpdated", "ProductUpdated", "{}")], 60)

    assert await SqlPartnerRepository(db).revoke("Gone")
    await store.enqueue([OutgoingEvent("evt_2.ProductUpdated", "ProductUpdated", "{}")], 60)
    due = await store.claim_due(10, 10, {}, 60)

    assert sorted((d.url, d.event_id) for d in due) == [
        ("http://127.0.0.1:9/stays", "evt_1.ProductUpdated"),
        ("http://127.0.0.1:9/stays", "evt_2.ProductUpdated"),
    ]  # the revoked partner's pending delivery stays unsent, and no new one is made
    assert len(await delivery_rows(db)) == 3
