"""`charge.dispute.created` and `charge.refunded` reduced to PaymentEvents: a dispute
names its PaymentIntent, amount, currency and reason, a refunded charge its PaymentIntent
and what was refunded of it in all; anything else in their place is neither."""

from __future__ import annotations

from typing import Any

import orjson

from domain.payments import PaymentEvent, charge_event_mismatch
from integrations.stripe_webhooks import parse_stripe_event, sign_stripe_payload

SECRET = "whsec_test_secret"


def parsed(obj: dict[str, Any], kind: str = "charge.dispute.created") -> PaymentEvent:
    payload = orjson.dumps({"id": "evt_9", "type": kind, "data": {"object": obj}})
    return parse_stripe_event(payload, sign_stripe_payload(payload, SECRET), SECRET)


DISPUTE = {
    "id": "dp_1",
    "object": "dispute",
    "payment_intent": "pi_1",
    "amount": 2_599,
    "currency": "eur",
    "reason": "fraudulent",
}


def test_a_dispute_names_its_payment_amount_currency_and_reason() -> None:
    assert parsed(DISPUTE) == PaymentEvent(
        event_id="evt_9",
        kind="dispute_created",
        order_id=None,
        payment_id="pi_1",
        amount=2_599,
        currency="eur",
        dispute_reason="fraudulent",
    )


def test_odd_disputes_carry_nothing_that_could_flag_an_order() -> None:
    assert parsed({**DISPUTE, "object": "charge"}).kind == "other"
    assert parsed({**DISPUTE, "payment_intent": 7}).payment_id is None
    assert parsed({**DISPUTE, "amount": True}).amount is None
    assert parsed({**DISPUTE, "reason": None}).dispute_reason == "unknown"
    assert parsed({**DISPUTE, "reason": "x" * 500}).dispute_reason == "x" * 64


def test_a_dispute_is_of_at_most_what_was_charged_in_the_order_s_currency() -> None:
    event = parsed(DISPUTE)
    assert charge_event_mismatch(event, 2_599, "EUR") is None
    assert charge_event_mismatch(event, 2_598, "EUR") == "amount mismatch"
    assert charge_event_mismatch(event, 2_599, "USD") == "currency mismatch"
    assert charge_event_mismatch(parsed({**DISPUTE, "amount": None}), 2_599, "EUR") == (
        "amount mismatch"
    )


def test_a_refunded_charge_names_its_payment_and_what_was_refunded_in_all() -> None:
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_1",
        "amount": 2_599,
        "amount_refunded": 700,
        "currency": "eur",
    }
    assert parsed(charge, "charge.refunded") == PaymentEvent(
        event_id="evt_9",
        kind="charge_refunded",
        order_id=None,
        payment_id="pi_1",
        amount=700,
        currency="eur",
    )
    assert parsed({**charge, "object": "refund"}, "charge.refunded").kind == "other"
    assert parsed({**charge, "amount_refunded": "7.00"}, "charge.refunded").amount is None
