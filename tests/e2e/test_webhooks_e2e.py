"""Partner webhooks as an operator runs them: `partner-create` and `webhook-create` from
the command line, one API server and two `python app.py worker` processes; a checkout
over HTTP reaches the partner's receiver signed, and with two workers claiming from one
queue every event arrives exactly once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from domain.webhooks import verify_signature
from persistence.db import Database
from tests.conftest import TEST_PII_INDEX_KEY, TEST_PII_KEY, TEST_REDIS_URL
from tests.e2e.processes import app_processes
from tests.e2e.server import run_cli, server_env
from tests.events import emit_rows, eventually
from tests.factories import CatalogFactory
from tests.shop import ADDRESS, CREATE_CART, SET_ADDRESS, vid
from tests.webhook_receiver import receiving

pytestmark = pytest.mark.e2e

CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { number status } userErrors { code } } }"""


async def test_two_workers_deliver_a_checkout_and_every_event_exactly_once(
    db: Database, clean: None, database_url: str, tmp_path: Path
) -> None:
    env = server_env(
        DATABASE_URL=database_url,
        REDIS_URL=TEST_REDIS_URL,
        ENVIRONMENT="test",
        PII_ENCRYPTION_KEYS=TEST_PII_KEY,
        PII_INDEX_KEY=TEST_PII_INDEX_KEY,
        DATABASE_POOL_SIZE="3",
        EVENT_CONSUMER_BLOCK_MS="100",
        EVENT_RELAY_POLL_SECONDS="0.1",
        WEBHOOK_POLL_SECONDS="0.05",
        WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",  # the receiver is on loopback
        RATE_LIMIT_CAPACITY="1000000000",
    )
    mugs = [await CatalogFactory(db).product(f"Mug {n}", stock=[10]) for n in range(40)]
    async with receiving() as receiver:
        run_cli(tmp_path, env, "partner-create", "--name", "Acme")
        created = run_cli(
            tmp_path, env, "webhook-create", "--partner", "Acme", "--url", receiver.url,
            "--events", "OrderPaid,ProductUpdated",
        )  # fmt: skip
        secret = created.strip().splitlines()[-1]
        with app_processes(tmp_path, env, servers=1, workers=2) as ([api], workers):
            await asyncio.gather(api.ready(), *(w.ready() for w in workers))
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:

                async def gql(document: str, variables: dict[str, object]) -> dict[str, object]:
                    body = (
                        await http.post(
                            "/graphql", json={"query": document, "variables": variables}
                        )
                    ).json()
                    assert "errors" not in body, body
                    data: dict[str, object] = body["data"]
                    return data

                cart = await gql(
                    CREATE_CART, {"lines": [{"variantId": vid(mugs[0]), "quantity": 1}]}
                )
                cart_id = cart["cartCreate"]["cart"]["id"]  # type: ignore[index]
                await gql(SET_ADDRESS, {"id": cart_id, "a": ADDRESS})
                await gql(
                    CHECKOUT,
                    {
                        "input": {
                            "cartId": cart_id,
                            "idempotencyKey": "e2e-hook",
                            "paymentMethod": "pm_card_visa",
                        }
                    },
                )
            await emit_rows(db, "ProductUpdated", [{"product": m.id, "slug": m.slug} for m in mugs])

            await eventually(lambda: len(receiver.received) >= 41, seconds=60)
            await asyncio.sleep(1.0)  # room for a duplicate, were there one

    ids = Counter(r.headers["x-webhook-event-id"] for r in receiver.received)
    assert len(ids) == 41 and set(ids.values()) == {1}  # 40 product events + 1 OrderPaid
    [paid] = receiver.of_type("OrderPaid")
    assert verify_signature(secret, paid.headers["x-signature"], paid.body, time.time())
    assert json.loads(paid.body)["data"]["order"]
