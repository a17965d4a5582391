"""GraphQL subscriptions over graphql-transport-ws on a real uvicorn server: a real
WebSocket client subscribes, another connection changes something over HTTP, and the
event arrives; access, limits and hostile messages are refused with codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from persistence.db import Database
from persistence.events.live_tail import RedisCartChanges
from schema.global_id import decode_gid, encode_gid
from settings import Settings
from tests.client import customer_token
from tests.conftest import settings_for
from tests.e2e.server import free_port, run_cli, server_env
from tests.events import emit_rows, unpublished
from tests.factories import CatalogFactory, MadeProduct
from tests.live import Closed, LiveApp, live_app, socket
from tests.shop import ready_cart, staff_token, vid

INVENTORY = """subscription($id: ID!) { productInventoryChanged(productId: $id) {
  title availableForSale variants { id availableForSale quantityAvailable } } }"""
ORDER = """subscription($id: ID, $token: String) {
  orderStatusChanged(orderId: $id, statusToken: $token) { id status } }"""
CART = """subscription($id: ID!) { cartChanged(cartId: $id) {
  id totalQuantity lines { quantity }
  warnings { code availableQuantity } } }"""
ADJUST = """mutation($input: InventoryAdjustInput!) { inventoryAdjust(input: $input) {
  userErrors { code } } }"""
CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status statusToken } userErrors { code } } }"""
CONFIRM = """mutation($input: CheckoutPaymentConfirmInput!) { checkoutPaymentConfirm(input: $input) {
  order { status } userErrors { code } } }"""
ADD = """mutation($id: ID!, $v: ID!) { cartLinesAdd(input: {cartId: $id, lines: [{variantId: $v, quantity: 1}]}) {
  userErrors { code } } }"""


def live_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    settings = settings_for(
        database_url,
        redis_url,
        run_worker_in_process=True,  # the outbox relay feeds the streams
        event_relay_poll_seconds=0.05,
        event_consumer_block_ms=100,
    )
    return settings.model_copy(update=overrides)


@pytest.fixture
async def live(database_url: str, shared_redis_url: str, clean: None) -> AsyncIterator[LiveApp]:
    async with live_app(live_settings(database_url, shared_redis_url)) as running:
        yield running


@contextlib.asynccontextmanager
async def limited(database_url: str, redis_url: str, **overrides: Any) -> AsyncIterator[LiveApp]:
    async with live_app(live_settings(database_url, redis_url, **overrides)) as running:
        yield running


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])


async def adjust(live: LiveApp, token: str, made: MadeProduct, quantity: int) -> None:
    result = await live.client.query(
        ADJUST, {"input": {"variantId": vid(made), "setQuantity": quantity}}, token=token
    )
    assert result.data["inventoryAdjust"]["userErrors"] == []


async def relayed(live: LiveApp) -> None:
    db = live.client.container.db
    for _ in range(250):
        if not await unpublished(db):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # and read by the stream reader


async def next_payload(ws: Any, operation_id: str, seconds: float = 2.0) -> dict[str, Any]:
    message = await ws.receive_other_than_ping(seconds)
    assert message["type"] == "next" and message["id"] == operation_id, message
    payload: dict[str, Any] = message["payload"]
    return payload


async def order_awaiting_payment(
    live: LiveApp, made: MadeProduct, token: str, key: str
) -> dict[str, Any]:
    """An order of the customer's, waiting for its payment (3-D Secure: payment action
    required)."""
    cart_id = await ready_cart(live.client, [(made, 1)], token=token)
    placed = await live.client.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": key,
                "paymentMethod": "pm_card_threeDSecure2Required",
            }
        },
        token=token,
    )
    assert placed.data["checkoutComplete"]["userErrors"] == []
    order: dict[str, Any] = placed.data["checkoutComplete"]["order"]
    assert order["status"] == "PAYMENT_ACTION_REQUIRED"
    return order


async def test_an_inventory_change_reaches_a_public_subscriber(
    live: LiveApp, mug: MadeProduct, db: Database
) -> None:
    staff = await staff_token(live.client, db)
    async with socket(live.ws_url, ack={}) as ws:
        await ws.subscribe("1", INVENTORY, {"id": encode_gid("Product", mug.id)})
        await asyncio.sleep(0.2)  # subscribed before the change

        await adjust(live, staff, mug, 3)
        payload = await next_payload(ws, "1")

    assert payload["data"] == {
        "productInventoryChanged": {
            "title": "Mug",
            "availableForSale": True,
            "variants": [{"id": vid(mug), "availableForSale": True, "quantityAvailable": 3}],
        }
    }


@pytest.mark.parametrize("holder", ["customer", "status token"])
async def test_a_paid_checkout_reaches_the_order_subscription_within_a_second(
    live: LiveApp, mug: MadeProduct, holder: str
) -> None:
    token = await customer_token(live.client, "ann@example.com")
    # Given an order waiting for its payment (3-D Secure: payment action required) ...
    order = await order_awaiting_payment(live, mug, token, "key-0000000001")
    gateway: Any = live.client.container.gateway
    [payment_id] = gateway.payments
    await relayed(live)  # what placing the order announced is out before we subscribe
    if holder == "customer":
        init, variables = {"Authorization": f"Bearer {token}"}, {"id": order["id"]}
    else:
        init, variables = {}, {"token": order["statusToken"]}
    async with socket(live.ws_url, ack=init) as ws:
        await ws.subscribe("o", ORDER, variables)
        await asyncio.sleep(0.2)

        # ... when the buyer completes 3-D Secure and confirms, in another connection ...
        gateway.complete_action(payment_id)
        started = time.monotonic()
        confirmed = await live.client.query(
            CONFIRM, {"input": {"orderId": order["id"]}}, token=token
        )
        assert confirmed.data["checkoutPaymentConfirm"]["userErrors"] == []
        payload = await next_payload(ws, "o", seconds=1.0)
        elapsed = time.monotonic() - started

    # ... then the paid order arrives on the subscription within a second.
    assert payload["data"] == {"orderStatusChanged": {"id": order["id"], "status": "PAID"}}
    assert elapsed < 1.0


LOG_OUT = """mutation($t: String!) { customerAccessTokenDelete(input: {accessToken: $t}) {
  deletedAccessToken } }"""


async def test_a_token_logged_out_after_connecting_sees_nothing_more(
    live: LiveApp, mug: MadeProduct, db: Database
) -> None:
    staff = await staff_token(live.client, db)
    token = await customer_token(live.client, "ann@example.com")
    order = await order_awaiting_payment(live, mug, token, "key-0000000002")
    other_cart = await ready_cart(live.client, [(mug, 2)], token=token)
    await relayed(live)
    async with socket(live.ws_url, ack={"Authorization": f"Bearer {token}"}) as ws:
        await ws.subscribe("o", ORDER, {"id": order["id"]})
        await ws.subscribe("c", CART, {"id": other_cart})
        await asyncio.sleep(0.2)
        await adjust(live, staff, mug, 5)  # moves the cart's line: an event while signed in
        seen = await next_payload(ws, "c")
        assert seen["data"]["cartChanged"]["totalQuantity"] == 2

        logged_out = await live.client.query(LOG_OUT, {"t": token})
        assert logged_out.data["customerAccessTokenDelete"]["deletedAccessToken"] == token
        await adjust(live, staff, mug, 1)  # the cart's stock moves again ...
        _, public_id = decode_gid(order["id"])
        await emit_rows(db, "OrderPaid", [{"order": public_id, "payment": None}])
        await relayed(live)
        # ... and the order moves, but the logged-out connection hears of neither: both
        # subscriptions end (complete) instead of sending the customer's data.
        ends = [await ws.receive_other_than_ping(2.0) for _ in range(2)]

    assert sorted((m["type"], m["id"]) for m in ends) == [("complete", "c"), ("complete", "o")]


async def test_someone_elses_order_and_cart_are_refused_with_a_code(
    live: LiveApp, mug: MadeProduct
) -> None:
    ann = await customer_token(live.client, "ann@example.com")
    bob = await customer_token(live.client, "bob@example.com")
    cart_id = await ready_cart(live.client, [(mug, 1)], token=ann)
    placed = await live.client.query(
        CHECKOUT,
        {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": "key-0000000002",
                "paymentMethod": "pm_card_visa",
            }
        },
        token=ann,
    )
    order_id = placed.data["checkoutComplete"]["order"]["id"]
    ann_cart = await ready_cart(live.client, [(mug, 1)], token=ann)

    async with socket(live.ws_url, ack={"Authorization": f"Bearer {bob}"}) as ws:
        await ws.subscribe("order", ORDER, {"id": order_id})
        await ws.subscribe("cart", CART, {"id": ann_cart})
        await ws.subscribe("token", ORDER, {"token": "not-a-status-token"})
        await ws.subscribe("junk", ORDER, {"id": "not an id"})
        replies = {}
        for _ in range(4):
            message = await ws.receive_other_than_ping()
            replies[message["id"]] = message
    async with socket(live.ws_url, ack={}) as guest:
        await guest.subscribe("order", ORDER, {"id": order_id})
        replies["guest"] = await guest.receive_other_than_ping()

    for name, message in replies.items():
        assert message["type"] == "error", (name, message)
        assert [e["extensions"]["code"] for e in message["payload"]] == ["NOT_FOUND"], name


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (CART, {"id": "\x00\x01cart"}),
        (CART, {"id": "c" * 100_000}),
        (CART, {"id": 12345}),
        (CART, {"id": ["a list"]}),
        (INVENTORY, {"id": "١٢٣"}),
        (INVENTORY, {"id": {"an": "object"}}),
        (ORDER, {"token": "t\x00" + "x" * 100_000}),
        (ORDER, {"id": encode_gid("Order", "٣٤")}),
    ],
    ids=["NUL", "100k", "int", "list", "arabic digits", "object", "huge token", "gid digits"],
)
async def test_hostile_arguments_get_a_coded_error_and_the_connection_lives_on(
    live: LiveApp, mug: MadeProduct, db: Database, document: str, variables: dict[str, Any]
) -> None:
    staff = await staff_token(live.client, db)
    async with socket(live.ws_url, ack={}) as ws:
        await ws.subscribe("bad", document, variables)
        refused = await ws.receive_other_than_ping()
        await ws.subscribe("good", INVENTORY, {"id": encode_gid("Product", mug.id)})
        await asyncio.sleep(0.2)
        await adjust(live, staff, mug, 4)
        payload = await next_payload(ws, "good")

    assert refused["type"] == "error", refused
    codes = [e["extensions"]["code"] for e in refused["payload"]]
    assert codes and "INTERNAL_SERVER_ERROR" not in codes, refused
    variants = payload["data"]["productInventoryChanged"]["variants"]
    assert [v["quantityAvailable"] for v in variants] == [4]


async def test_a_cart_subscription_sees_its_lines_and_a_stock_warning_before_checkout(
    live: LiveApp, mug: MadeProduct, db: Database
) -> None:
    staff = await staff_token(live.client, db)
    cart_id = await ready_cart(live.client, [(mug, 2)])  # a guest cart: its id opens it
    async with socket(live.ws_url, ack={}) as ws:
        await ws.subscribe("c", CART, {"id": cart_id})
        await asyncio.sleep(0.2)

        await live.client.query(ADD, {"id": cart_id, "v": vid(mug)})
        added = await next_payload(ws, "c")
        await adjust(live, staff, mug, 1)  # the flash sale runs the mug low
        warned = await next_payload(ws, "c")

    assert added["data"]["cartChanged"]["totalQuantity"] == 3
    assert added["data"]["cartChanged"]["warnings"] == []
    assert warned["data"]["cartChanged"]["warnings"] == [
        {"code": "INSUFFICIENT_STOCK", "availableQuantity": 1}
    ]


async def test_a_checked_out_cart_ends_its_subscription_with_null(
    live: LiveApp, mug: MadeProduct
) -> None:
    cart_id = await ready_cart(live.client, [(mug, 1)])
    async with socket(live.ws_url, ack={}) as ws:
        await ws.subscribe("c", CART, {"id": cart_id})
        await asyncio.sleep(0.2)
        await live.client.query(
            CHECKOUT,
            {
                "input": {
                    "cartId": cart_id,
                    "idempotencyKey": "key-0000000002",
                    "paymentMethod": "pm_card_visa",
                }
            },
        )
        gone = await next_payload(ws, "c")
        complete = await ws.receive_other_than_ping()

    assert gone["data"] == {"cartChanged": None}
    assert complete == {"id": "c", "type": "complete"}


def codes(message: dict[str, Any]) -> list[str]:
    assert message["type"] == "error", message
    return [e["extensions"]["code"] for e in message["payload"]]


async def test_a_connection_runs_at_most_max_subscriptions_per_connection(
    database_url: str, shared_redis_url: str, clean: None, mug: MadeProduct
) -> None:
    product = {"id": encode_gid("Product", mug.id)}
    async with (
        limited(database_url, shared_redis_url, max_subscriptions_per_connection=2) as live,
        socket(live.ws_url, ack={}) as ws,
    ):
        await ws.subscribe("1", INVENTORY, product)
        await ws.subscribe("2", INVENTORY, product)
        await ws.subscribe("3", INVENTORY, product)
        refused = await ws.receive_other_than_ping()
        # One ends; its place is free again.
        await ws.send({"id": "1", "type": "complete"})
        await asyncio.sleep(0.1)
        await ws.subscribe("4", INVENTORY, product)
        with pytest.raises(TimeoutError):  # no refusal: it runs
            await ws.receive_other_than_ping(0.5)

    assert refused["id"] == "3"
    assert codes(refused) == ["SUBSCRIPTION_LIMIT_REACHED"]


async def test_a_client_opens_at_most_its_connections_and_more_are_closed_4429(
    database_url: str, shared_redis_url: str, clean: None
) -> None:
    async with limited(
        database_url, shared_redis_url, subscription_connections_per_client=2
    ) as live:
        async with (
            socket(live.ws_url, ack={}),
            socket(live.ws_url, ack={}),
            socket(live.ws_url) as third,
        ):
            closed = await third.closed()
        # Both closed: a new one is welcome.
        await asyncio.sleep(0.1)
        async with socket(live.ws_url, ack={}) as again:
            await again.send({"type": "ping"})
            assert await again.receive() == {"type": "pong"}

    assert (closed.code, closed.reason) == (4429, "too many connections from this client")


async def test_a_slow_consumer_is_dropped_with_4008_not_buffered(
    database_url: str, shared_redis_url: str, clean: None, mug: MadeProduct, db: Database
) -> None:
    async with (
        limited(database_url, shared_redis_url, subscription_queue_size=3) as live,
        socket(live.ws_url, ack={}) as ws,
    ):
        await ws.subscribe("1", INVENTORY, {"id": encode_gid("Product", mug.id)})
        await asyncio.sleep(0.2)
        # A burst the subscriber cannot keep up with: 50 stock changes at once.
        await emit_rows(
            db,
            "StockChanged",
            [{"variant": mug.variant_ids[0], "available": n} for n in range(50)],
        )
        received = 0
        with pytest.raises(Closed) as closed:
            while True:
                await ws.receive_other_than_ping(5)
                received += 1
        listeners = live.client.container.live_feed.listeners

    assert (closed.value.code, closed.value.reason) == (
        4008,
        "slow consumer: too many undelivered events; resubscribe and query",
    )
    assert received < 50
    assert listeners == 0  # nothing kept for it


async def test_a_client_that_never_answers_pings_is_closed_4408(
    database_url: str, shared_redis_url: str, clean: None
) -> None:
    async with limited(
        database_url,
        shared_redis_url,
        subscription_ping_seconds=0.2,
        subscription_pong_timeout_seconds=0.3,
    ) as live:
        async with socket(live.ws_url, ack={}) as answering:
            # One that answers stays open through several pings.
            for _ in range(3):
                assert await answering.receive(2) == {"type": "ping"}
                await answering.send({"type": "pong"})
        async with socket(live.ws_url, ack={}) as silent:
            assert await silent.receive(2) == {"type": "ping"}
            closed = await silent.closed()

    assert (closed.code, closed.reason) == (4408, "no pong: ping timeout")


@pytest.mark.parametrize(
    ("overrides", "query", "code"),
    [
        ({"max_query_depth": 1}, INVENTORY, "MAX_DEPTH_EXCEEDED"),
        ({"max_query_cost": 1}, INVENTORY, "MAX_COST_EXCEEDED"),
        (
            {"max_query_aliases": 1},
            "subscription($id: ID!) { a: productInventoryChanged(productId: $id) { b: title c: title } }",
            "MAX_ALIASES_EXCEEDED",
        ),
        ({"rate_limit_capacity": 1, "rate_limit_restore_rate": 0.001}, INVENTORY, "THROTTLED"),
        ({}, "subscription { nope }", "GRAPHQL_VALIDATION_FAILED"),
        ({}, "query($id: ID!) { product(id: $id) { title } }", "BAD_REQUEST"),
        (
            {"max_query_bytes": 1024},
            "subscription { " + "__typename " * 200 + "}",
            "QUERY_TOO_LARGE",
        ),
    ],
    ids=["depth", "cost", "aliases", "rate limit", "invalid", "a query", "size"],
)
async def test_the_request_limits_apply_when_subscribing(
    database_url: str,
    shared_redis_url: str,
    clean: None,
    mug: MadeProduct,
    overrides: dict[str, Any],
    query: str,
    code: str,
) -> None:
    async with (
        limited(database_url, shared_redis_url, **overrides) as live,
        socket(live.ws_url, ack={}) as ws,
    ):
        await ws.subscribe("1", query, {"id": encode_gid("Product", mug.id)})
        refused = await ws.receive_other_than_ping()
        live_listeners = live.client.container.live_feed.listeners

    assert refused["id"] == "1"
    assert set(codes(refused)) == {code}  # (one error per field too deep)
    assert live_listeners == 0


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", 4400),
        ('{"type": "subscribe", "id": "1", "payload": {"query": "subscription { x }"}}', 4401),
        ('["a list"]', 4400),
        ('{"type": 7}', 4400),
        ('{"type": "connection_init", "payload": "not an object"}', 4400),
    ],
    ids=["not json", "before init", "a list", "a typeless message", "bad init"],
)
async def test_hostile_messages_close_the_connection_with_a_code(
    live: LiveApp, message: str, code: int
) -> None:
    async with socket(live.ws_url) as ws:
        await ws.connection.send(message)
        closed = await ws.closed()

    assert closed.code == code


async def test_malformed_subscribe_messages_and_huge_frames_are_refused(live: LiveApp) -> None:
    async with socket(live.ws_url, ack={}) as ws:
        await ws.send({"type": "subscribe", "id": "1", "payload": {"query": 42}})
        assert (await ws.closed()).code == 4400
    async with socket(live.ws_url, ack={}) as ws:
        await ws.connection.send("x" * 2_000_000)  # beyond MAX_BODY_BYTES
        assert (await ws.closed()).code == 1009  # message too big
    # The server lives on.
    async with socket(live.ws_url, ack={}) as ws:
        await ws.send({"type": "ping"})
        assert await ws.receive() == {"type": "pong"}


async def test_an_unknown_partner_key_is_refused_4403(live: LiveApp) -> None:
    async with socket(live.ws_url) as ws:
        await ws.send({"type": "connection_init", "payload": {"X-Api-Key": "not-a-key"}})
        closed = await ws.closed()

    assert (closed.code, closed.reason) == (4403, "Forbidden")


NAMED_INVENTORY = """subscription Inventory($id: ID!) {
  productInventoryChanged(productId: $id) { variants { quantityAvailable } } }"""


async def test_a_persisted_only_partner_subscribes_by_manifest_id_and_nothing_else(
    database_url: str, shared_redis_url: str, clean: None, mug: MadeProduct, tmp_path: Path
) -> None:
    operator = server_env(DATABASE_URL=database_url)
    (tmp_path / "inventory.graphql").write_text(NAMED_INVENTORY)
    manifest = tmp_path / "manifest.json"
    run_cli(tmp_path, operator, "manifest-build", "inventory.graphql", "--output", str(manifest))
    [operation] = json.loads(manifest.read_text())["operations"]
    key = run_cli(
        tmp_path, operator, "partner-create", "--name", "Acme", "--persisted-only",
        "--manifest", str(manifest),
    ).strip().splitlines()[-1]  # fmt: skip
    by_id = {"persistedQuery": {"version": 1, "sha256Hash": operation["id"]}}
    variables = {"id": encode_gid("Product", mug.id)}

    async with (
        limited(database_url, shared_redis_url) as live,
        socket(live.ws_url, ack={"X-Api-Key": key}) as ws,
    ):
        await ws.subscribe("free", NAMED_INVENTORY, variables)
        refused = await ws.receive_other_than_ping()
        await ws.subscribe("manifest", None, variables, extensions=by_id)
        await asyncio.sleep(0.3)
        await emit_rows(
            live.client.container.db,
            "StockChanged",
            [{"variant": mug.variant_ids[0], "available": 10}],
        )
        event = await next_payload(ws, "manifest")

    assert codes(refused) == ["PERSISTED_QUERY_NOT_ALLOWED"]
    assert event["data"] == {"productInventoryChanged": {"variants": [{"quantityAvailable": 10}]}}


async def test_a_subscription_over_http_is_a_coded_refusal_not_a_stream(
    live: LiveApp, mug: MadeProduct
) -> None:
    variables = {"id": encode_gid("Product", mug.id)}
    posted = await live.client.http.post(
        "/graphql", json={"query": INVENTORY, "variables": variables}
    )
    fetched = await live.client.http.get(
        "/graphql", params={"query": INVENTORY, "variables": json.dumps(variables)}
    )

    for response in (posted, fetched):
        assert response.status_code in (400, 405), response.text
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_REQUEST"]


async def test_a_failed_cart_announcement_never_fails_the_cart_write(caplog: Any) -> None:
    unreachable = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    changes = RedisCartChanges(unreachable, max_length=100, timeout_seconds=0.2)
    try:
        await changes.cart_changed("c1")  # returns: the write it follows stands
    finally:
        await unreachable.aclose()

    assert "announcing a cart change failed" in caplog.text
