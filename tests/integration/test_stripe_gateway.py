"""The Stripe adapter's contract: the real stripe SDK against a local fake of Stripe's API.

No database: each test starts its own fake on 127.0.0.1 and a gateway pointed at it.
Timeouts are short (half a second), so a hung request costs about that much.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest
import stripe

from domain.payments import (
    ChargeDeclined,
    ChargeInvalid,
    ChargeRequest,
    ChargeRequiresAction,
    ChargeSucceeded,
    ChargeUnknown,
    PaymentAction,
    PaymentEvent,
    PaymentState,
    PaymentStatus,
    RefundResult,
)
from integrations.stripe_gateway import UNUSABLE_METHOD, StripeGateway
from integrations.stripe_webhooks import InvalidWebhook, parse_stripe_event, sign_stripe_payload
from tests.fakes.stripe_server import StripeFake, running_stripe_fake

# stripe 16.1's HTTPXClient posts its encoded form as `data=<str>`, which httpx 0.28
# deprecates; the request is still sent intact.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning"
)
TIMEOUT = 0.5
SECRET = "whsec_test_secret"
CHARGE = ChargeRequest(
    order_id="ord_7Hq2",
    amount=2599,
    currency_code="EUR",
    payment_method="pm_card_visa",
    idempotency_key="order-ord_7Hq2-charge",
    description="Order 1001",
)


@pytest.fixture
def stripe_fake() -> Iterator[StripeFake]:
    with running_stripe_fake() as fake:
        yield fake


@pytest.fixture
async def gateway(stripe_fake: StripeFake) -> AsyncIterator[StripeGateway]:
    async with StripeGateway(stripe_fake.api_key, stripe_fake.url, timeout_seconds=TIMEOUT) as gw:
        yield gw


def a_charge(**changes: Any) -> ChargeRequest:
    return replace(CHARGE, **changes)


def a_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Charges


@pytest.mark.parametrize(
    ("method", "brand", "last4"),
    [("pm_card_visa", "visa", "4242"), ("pm_card_mastercard", "mastercard", "4444")],
)
async def test_a_successful_charge_reports_the_card_and_sends_our_key_and_order(
    gateway: StripeGateway, stripe_fake: StripeFake, method: str, brand: str, last4: str
) -> None:
    # when
    result = await gateway.charge(a_charge(payment_method=method))

    # then
    assert isinstance(result, ChargeSucceeded)
    assert (result.card_brand, result.card_last4) == (brand, last4)
    assert list(stripe_fake.payment_intents) == [result.payment_id]
    [sent] = stripe_fake.requests
    assert sent.idempotency_key == "order-ord_7Hq2-charge"
    assert {k: sent.params[k] for k in ("amount", "currency", "payment_method", "confirm")} == {
        "amount": "2599",
        "currency": "eur",
        "payment_method": method,
        "confirm": "true",
    }
    assert sent.params["metadata[order_id]"] == "ord_7Hq2"
    assert sent.params["description"] == "Order 1001"


async def test_a_charge_retried_with_the_same_key_charges_once(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given
    first = await gateway.charge(CHARGE)

    # when
    second = await gateway.charge(CHARGE)

    # then
    assert second == first
    assert [r.idempotency_key for r in stripe_fake.requests] == [CHARGE.idempotency_key] * 2
    assert len(stripe_fake.payment_intents) == 1


async def test_the_sdk_retries_a_lost_response_with_the_same_key(stripe_fake: StripeFake) -> None:
    # given: Stripe charges but its answer never arrives
    stripe_fake.hang_next(1)

    # when
    async with StripeGateway(
        stripe_fake.api_key, stripe_fake.url, timeout_seconds=TIMEOUT, max_network_retries=1
    ) as gateway:
        result = await gateway.charge(CHARGE)

    # then: the retry got the stored answer instead of charging again
    assert isinstance(result, ChargeSucceeded)
    assert list(stripe_fake.payment_intents) == [result.payment_id]
    assert [r.idempotency_key for r in stripe_fake.requests] == [CHARGE.idempotency_key] * 2


@pytest.mark.parametrize(
    ("method", "decline_code", "message"),
    [
        ("pm_card_chargeDeclined", "generic_decline", "Your card was declined."),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
    ],
)
async def test_a_declined_card_reports_the_decline_code(
    gateway: StripeGateway, stripe_fake: StripeFake, method: str, decline_code: str, message: str
) -> None:
    # when
    result = await gateway.charge(a_charge(payment_method=method))

    # then
    [intent_id] = stripe_fake.payment_intents
    assert result == ChargeDeclined(decline_code, message, payment_id=intent_id)


@pytest.mark.parametrize(
    "method", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"]
)
async def test_a_card_that_needs_3d_secure_answers_the_action_and_a_retry_the_same(
    gateway: StripeGateway, stripe_fake: StripeFake, method: str
) -> None:
    # when
    result = await gateway.charge(a_charge(payment_method=method))
    retried = await gateway.charge(a_charge(payment_method=method))

    # then: the customer's client gets the intent's secret, once per intent
    [intent] = stripe_fake.payment_intents.values()
    assert result == ChargeRequiresAction(
        intent["id"], PaymentAction(intent["client_secret"], "USE_STRIPE_SDK")
    )
    assert retried == result
    assert len(stripe_fake.payment_intents) == 1


@pytest.mark.parametrize(
    ("succeed", "state"),
    [
        (True, PaymentState(PaymentStatus.SUCCEEDED, card_brand="visa", card_last4="3184")),
        (
            False,
            PaymentState(
                PaymentStatus.FAILED, decline_code="payment_intent_authentication_failure"
            ),
        ),
    ],
)
async def test_the_status_of_an_intent_after_the_customer_action(
    gateway: StripeGateway, stripe_fake: StripeFake, succeed: bool, state: PaymentState
) -> None:
    # given
    waiting = await gateway.charge(a_charge(payment_method="pm_card_authenticationRequired"))
    assert isinstance(waiting, ChargeRequiresAction)
    before = await gateway.payment_status(waiting.payment_id)

    # when
    stripe_fake.complete_action(waiting.payment_id, succeed=succeed)
    after = await gateway.payment_status(waiting.payment_id)

    # then
    assert before.status is PaymentStatus.ACTION_REQUIRED
    assert after == replace(state, payment_id=waiting.payment_id, amount=2599, currency="eur")


async def test_a_payment_is_found_by_its_order_id_and_none_for_another_order(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given
    paid = await gateway.charge(CHARGE)
    assert isinstance(paid, ChargeSucceeded)

    # when
    found = await gateway.find_payment(CHARGE.order_id)
    missing = await gateway.find_payment("ord_nobody")

    # then
    assert found == PaymentState(
        PaymentStatus.SUCCEEDED, paid.payment_id, 2599, "eur", None, "visa", "4242"
    )
    assert missing is None
    [search, _] = stripe_fake.requests_to("/v1/payment_intents/search")
    assert search.params["query"] == "metadata['order_id']:'ord_7Hq2'"


async def test_cancelling_a_waiting_intent_cancels_it_and_a_paid_one_stays_paid(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given
    waiting = await gateway.charge(a_charge(payment_method="pm_card_authenticationRequired"))
    paid = await gateway.charge(a_charge(idempotency_key="order-other-charge"))
    assert isinstance(waiting, ChargeRequiresAction) and isinstance(paid, ChargeSucceeded)

    # when
    cancelled = await gateway.cancel_payment(waiting.payment_id)
    not_cancelled = await gateway.cancel_payment(paid.payment_id)

    # then
    assert cancelled.status is PaymentStatus.CANCELED
    assert stripe_fake.payment_intents[waiting.payment_id]["status"] == "canceled"
    assert not_cancelled.status is PaymentStatus.SUCCEEDED


async def test_a_status_stripe_cannot_give_is_unknown(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given
    paid = await gateway.charge(CHARGE)
    assert isinstance(paid, ChargeSucceeded)
    stripe_fake.fail_next(2, status=500)

    # when
    status = await gateway.payment_status(paid.payment_id)
    found = await gateway.find_payment(CHARGE.order_id)

    # then
    assert status == PaymentState(
        PaymentStatus.UNKNOWN, paid.payment_id, reason="Stripe answered HTTP 500"
    )
    assert found is not None and found.status is PaymentStatus.UNKNOWN


async def test_an_unknown_payment_method_is_invalid_and_charges_nothing(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # when
    result = await gateway.charge(a_charge(payment_method="pm_does_not_exist"))

    # then
    assert result == ChargeInvalid(UNUSABLE_METHOD)
    assert stripe_fake.payment_intents == {}


async def test_a_hung_request_is_unknown_after_the_timeout_and_a_retry_settles_it(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given
    stripe_fake.hang_next(1)

    # when
    started = time.monotonic()
    result = await gateway.charge(CHARGE)
    elapsed = time.monotonic() - started

    # then: unknown within about the timeout, though Stripe did charge ...
    assert result == ChargeUnknown(f"no answer from Stripe within {TIMEOUT:g} s")
    assert TIMEOUT <= elapsed < TIMEOUT + 1.0
    [intent_id] = stripe_fake.payment_intents
    # ... which a retry with the same key reveals without charging again
    retried = await gateway.charge(CHARGE)
    assert isinstance(retried, ChargeSucceeded)
    assert retried.payment_id == intent_id
    assert len(stripe_fake.payment_intents) == 1


async def test_a_stripe_server_error_is_unknown(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given
    stripe_fake.fail_next(1, status=500)

    # when
    result = await gateway.charge(CHARGE)

    # then
    assert result == ChargeUnknown("Stripe answered HTTP 500")


async def test_an_unreachable_stripe_is_unknown() -> None:
    # given: nothing listens on the port
    async with StripeGateway(
        "sk_test_fake", f"http://127.0.0.1:{a_free_port()}", timeout_seconds=TIMEOUT
    ) as gateway:
        # when
        result = await gateway.charge(CHARGE)

    # then
    assert result == ChargeUnknown("could not reach Stripe")


async def test_reusing_a_key_with_other_parameters_is_unknown(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given: the key already charged the order at another amount
    first = await gateway.charge(CHARGE)
    assert isinstance(first, ChargeSucceeded)

    # when
    result = await gateway.charge(a_charge(amount=1999))

    # then: not a decline, since the first request did charge
    assert result == ChargeUnknown("idempotency key reused with different parameters")
    assert len(stripe_fake.payment_intents) == 1


async def test_a_wrong_api_key_raises_and_charges_nothing(stripe_fake: StripeFake) -> None:
    # given
    async with StripeGateway("sk_test_wrong", stripe_fake.url, timeout_seconds=TIMEOUT) as gateway:
        # when / then
        with pytest.raises(stripe.AuthenticationError):
            await gateway.charge(CHARGE)
    assert stripe_fake.payment_intents == {}


# Refunds


async def test_a_refund_uses_its_own_key_and_returns_the_refund_id(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given
    charged = await gateway.charge(CHARGE)
    assert isinstance(charged, ChargeSucceeded)

    # when
    refund = await gateway.refund(charged.payment_id, 1000, "EUR", "order-ord_7Hq2-refund-1")
    again = await gateway.refund(charged.payment_id, 1000, "EUR", "order-ord_7Hq2-refund-1")

    # then
    assert refund.succeeded
    assert refund.refund_id is not None
    assert refund.refund_id.startswith("re_")
    assert again == refund
    assert list(stripe_fake.refunds) == [refund.refund_id]
    refunds = stripe_fake.requests_to("/v1/refunds")
    assert [r.idempotency_key for r in refunds] == ["order-ord_7Hq2-refund-1"] * 2
    assert refunds[0].params == {"payment_intent": charged.payment_id, "amount": "1000"}


async def test_a_failed_refund_is_reported_and_logged(
    gateway: StripeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    # when
    with caplog.at_level(logging.WARNING, logger="integrations.stripe_gateway"):
        result = await gateway.refund("pi_unknown", 1000, "EUR", "refund-of-nothing")

    # then
    assert result == RefundResult(refund_id=None, succeeded=False)
    assert "pi_unknown" in caplog.text


async def test_partial_refunds_add_up_and_one_beyond_the_charge_is_refused(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given: 25.99 charged
    charged = await gateway.charge(CHARGE)
    assert isinstance(charged, ChargeSucceeded)

    # when: 10.00, 10.00, then 10.00 more than is left, then the 5.99 left
    first = await gateway.refund(charged.payment_id, 1000, "EUR", "order-ord_7Hq2-refund-a")
    second = await gateway.refund(charged.payment_id, 1000, "EUR", "order-ord_7Hq2-refund-b")
    beyond = await gateway.refund(charged.payment_id, 1000, "EUR", "order-ord_7Hq2-refund-c")
    rest = await gateway.refund(charged.payment_id, 599, "EUR", "order-ord_7Hq2-refund-d")

    # then
    assert first.succeeded and second.succeeded and rest.succeeded
    assert beyond == RefundResult(refund_id=None, succeeded=False, pending=False)
    assert sorted(r["amount"] for r in stripe_fake.refunds.values()) == [599, 1000, 1000]
    sent = [r.params["amount"] for r in stripe_fake.requests_to("/v1/refunds")]
    assert sent == ["1000", "1000", "1000", "599"]


async def test_a_refund_without_an_answer_is_pending_not_failed(
    gateway: StripeGateway, stripe_fake: StripeFake
) -> None:
    # given
    charged = await gateway.charge(CHARGE)
    assert isinstance(charged, ChargeSucceeded)
    stripe_fake.fail_next(1, status=500)

    # when
    unknown = await gateway.refund(charged.payment_id, 1000, "EUR", "order-ord_7Hq2-refund-5")
    again = await gateway.refund(charged.payment_id, 1000, "EUR", "order-ord_7Hq2-refund-5")

    # then: the same key asked again refunds once
    assert unknown == RefundResult(refund_id=None, succeeded=False, pending=True)
    assert again.succeeded and len(stripe_fake.refunds) == 1


# Webhooks


def an_event(kind: str, intent: dict[str, Any], event_id: str = "evt_1") -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": kind, "data": {"object": intent}}
    ).encode()


def an_intent(**fields: Any) -> dict[str, Any]:
    return {
        "id": "pi_123",
        "object": "payment_intent",
        "metadata": {"order_id": "ord_7Hq2"},
        "latest_charge": "ch_123",
        "last_payment_error": None,
        **fields,
    }


def test_a_signed_payment_succeeded_event_becomes_a_payment_event() -> None:
    # given
    payload = an_event("payment_intent.succeeded", an_intent(status="succeeded"))

    # when
    event = parse_stripe_event(payload, sign_stripe_payload(payload, SECRET), SECRET)

    # then
    assert event == PaymentEvent(
        event_id="evt_1", kind="payment_succeeded", order_id="ord_7Hq2", payment_id="pi_123"
    )


def test_a_payment_failed_event_carries_the_decline_and_the_card() -> None:
    # given
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "payment_method": {"id": "pm_1", "card": {"brand": "visa", "last4": "9995"}},
    }
    payload = an_event(
        "payment_intent.payment_failed",
        an_intent(status="requires_payment_method", last_payment_error=error),
        event_id="evt_2",
    )

    # when
    event = parse_stripe_event(payload, sign_stripe_payload(payload, SECRET), SECRET)

    # then
    assert event == PaymentEvent(
        event_id="evt_2",
        kind="payment_failed",
        order_id="ord_7Hq2",
        payment_id="pi_123",
        decline_code="insufficient_funds",
        card_brand="visa",
        card_last4="9995",
    )


def test_other_events_are_other_and_name_no_payment_for_other_objects() -> None:
    # given
    payload = an_event("charge.captured", {"id": "ch_123", "object": "charge"}, "evt_3")

    # when
    event = parse_stripe_event(payload, sign_stripe_payload(payload, SECRET), SECRET)

    # then
    assert event == PaymentEvent("evt_3", "other", order_id=None, payment_id=None)


GOOD = an_event("payment_intent.succeeded", an_intent(status="succeeded"))


@pytest.mark.parametrize(
    ("payload", "signature"),
    [
        pytest.param(GOOD, lambda p: sign_stripe_payload(p, "whsec_other"), id="bad-signature"),
        pytest.param(GOOD, lambda p: None, id="missing-header"),
        pytest.param(GOOD, lambda p: "t=abc,v1=00", id="garbled-header"),
        pytest.param(
            GOOD,
            lambda p: sign_stripe_payload(p, SECRET, timestamp=int(time.time()) - 3600),
            id="stale-timestamp",
        ),
        pytest.param(b"{not json", lambda p: sign_stripe_payload(p, SECRET), id="garbage-json"),
        pytest.param(b"[]", lambda p: sign_stripe_payload(p, SECRET), id="not-an-event"),
        pytest.param(b"\xff\xfe", lambda p: sign_stripe_payload(p, SECRET), id="not-utf8"),
    ],
)
def test_an_unverifiable_or_unreadable_webhook_is_invalid(payload: bytes, signature: Any) -> None:
    # when / then
    with pytest.raises(InvalidWebhook):
        parse_stripe_event(payload, signature(payload), SECRET)


def test_a_tampered_body_fails_its_signature() -> None:
    # given
    header = sign_stripe_payload(GOOD, SECRET)
    tampered = GOOD.replace(b"ord_7Hq2", b"ord_other")

    # when / then
    with pytest.raises(InvalidWebhook):
        parse_stripe_event(tampered, header, SECRET)
