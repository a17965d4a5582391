"""A signed webhook settles an order only if it is about that order's payment.

Through the real `POST /webhooks/stripe` with correctly signed payloads, on PostgreSQL.
The gateway leaves the payment unknown but names its PaymentIntent (as Stripe does for a
"processing" intent), so the order is PENDING_PAYMENT with a recorded payment id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from domain.payments import ChargeRequest, ChargeResult, ChargeUnknown
from integrations.sandbox_gateway import SandboxGateway
from integrations.stripe_webhooks import sign_stripe_payload
from persistence.db import Database
from persistence.tables import webhook_events
from schema.global_id import decode_gid
from settings import Settings
from tests.client import AppClient, running_app
from tests.factories import CatalogFactory, MadeProduct
from tests.integration.test_checkout import WEBHOOK_SECRET, _order_status, checkout, minor_units
from tests.shop import ready_cart, stock

INTENT = "pi_recorded_1"


class ProcessingGateway(SandboxGateway):
    """Every charge is still processing at the gateway: outcome unknown, intent known."""

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        return ChargeUnknown("payment is processing", INTENT)


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    configured = settings.model_copy(update={"stripe_webhook_secret": SecretStr(WEBHOOK_SECRET)})
    async with running_app(configured, gateway=ProcessingGateway()) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])


@pytest.fixture
async def pending(shop: AppClient, mug: MadeProduct) -> dict[str, Any]:
    cart_id = await ready_cart(shop, [(mug, 2)])
    placed = await checkout(shop, cart_id, "webhook-key-1")
    assert placed["order"]["status"] == "PENDING_PAYMENT"
    return {
        "public_id": decode_gid(placed["order"]["id"])[1],
        "amount": minor_units(placed["order"]["cost"]["totalAmount"]),
    }


async def deliver(shop: AppClient, event_id: str, kind: str, intent: dict[str, Any]) -> Any:
    payload = orjson.dumps({"id": event_id, "type": kind, "data": {"object": intent}})
    return await shop.http.post(
        "/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_stripe_payload(payload, WEBHOOK_SECRET)},
    )


def intent_for(pending: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "id": INTENT,
        "object": "payment_intent",
        "metadata": {"order_id": pending["public_id"]},
        "amount": pending["amount"],
        "currency": "usd",
        **changes,
    }


async def recorded_outcome(db: Database, event_id: str) -> str:
    async with db.reader.connect() as connection:
        value = (
            await connection.execute(
                select(webhook_events.c.outcome).where(webhook_events.c.event_id == event_id)
            )
        ).scalar_one()
    return str(value)


@pytest.mark.parametrize(
    ("kind", "changes", "outcome"),
    [
        ("payment_intent.succeeded", {"amount": 1}, "ignored: amount mismatch"),
        ("payment_intent.succeeded", {"amount": None}, "ignored: amount mismatch"),
        ("payment_intent.succeeded", {"currency": "eur"}, "ignored: currency mismatch"),
        ("payment_intent.succeeded", {"id": "pi_someone_else"}, "ignored: payment intent mismatch"),
        (
            "payment_intent.payment_failed",
            {"id": "pi_someone_else"},
            "ignored: payment intent mismatch",
        ),
        ("payment_intent.payment_failed", {"amount": 1}, "ignored: amount mismatch"),
    ],
)
async def test_a_signed_event_about_another_payment_changes_nothing(
    shop: AppClient,
    pending: dict[str, Any],
    mug: MadeProduct,
    db: Database,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    changes: dict[str, Any],
    outcome: str,
) -> None:
    # when
    response = await deliver(shop, "evt_wrong_1", kind, intent_for(pending, **changes))

    # then: nothing moved; acknowledged (so Stripe stops resending) with the reason kept
    assert await _order_status(db, pending["public_id"]) == "PENDING_PAYMENT"
    assert await stock(db, mug) == 8  # still reserved
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False, "outcome": outcome}
    assert await recorded_outcome(db, "evt_wrong_1") == outcome
    assert pending["public_id"] in caplog.text and outcome.split(": ")[1] in caplog.text
    assert "ann@example.com" not in caplog.text


async def test_the_matching_event_still_settles_and_currency_case_does_not_matter(
    shop: AppClient, pending: dict[str, Any], db: Database
) -> None:
    # given: a mismatching event came first and was ignored
    await deliver(shop, "evt_bad_1", "payment_intent.succeeded", intent_for(pending, amount=1))

    # when
    response = await deliver(
        shop, "evt_good_1", "payment_intent.succeeded", intent_for(pending, currency="USD")
    )
    repeat = await deliver(
        shop, "evt_good_1", "payment_intent.succeeded", intent_for(pending, currency="USD")
    )

    # then
    assert response.json() == {"received": True, "duplicate": False, "outcome": "settled: paid"}
    assert repeat.json() == {"received": True, "duplicate": True, "outcome": "settled: paid"}
    assert await _order_status(db, pending["public_id"]) == "PAID"


async def test_a_matching_failure_event_fails_the_order_and_releases_stock(
    shop: AppClient, pending: dict[str, Any], mug: MadeProduct, db: Database
) -> None:
    # when
    response = await deliver(
        shop, "evt_fail_1", "payment_intent.payment_failed", intent_for(pending)
    )

    # then
    assert response.json()["outcome"] == "settled: payment failed"
    assert await _order_status(db, pending["public_id"]) == "PAYMENT_FAILED"
    assert await stock(db, mug) == 10


async def test_events_for_no_known_order_or_no_payment_are_acknowledged_and_recorded(
    shop: AppClient, pending: dict[str, Any], db: Database
) -> None:
    # when
    unknown = await deliver(
        shop,
        "evt_unknown_1",
        "payment_intent.succeeded",
        intent_for(pending, metadata={"order_id": "no-such-order"}),
    )
    other = await deliver(
        shop, "evt_other_1", "charge.captured", {"id": "ch_1", "object": "charge"}
    )

    # then
    assert (unknown.status_code, unknown.json()["outcome"]) == (200, "ignored: unknown order")
    assert (other.status_code, other.json()["outcome"]) == (200, "ignored: not a payment event")
    assert await recorded_outcome(db, "evt_unknown_1") == "ignored: unknown order"
    assert await _order_status(db, pending["public_id"]) == "PENDING_PAYMENT"
