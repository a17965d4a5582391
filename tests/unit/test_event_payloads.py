"""Event topics and payloads: one frozen dataclass per topic, and the wire format consumers read.

The outbox stores a payload as a JSON object and the relay copies it to the stream as it
is, so the field names below are a contract with every consumer (and with the events
already sitting in the outbox when a new version deploys)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from domain.events import (
    PAYLOADS,
    DiscountChanged,
    EmailVerificationRequested,
    Event,
    EventPayload,
    FulfillmentCreated,
    GiftCardCreated,
    GiftCardDisabled,
    MalformedEvent,
    OrderCancelled,
    OrderDisputed,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    PasswordResetRequested,
    PaymentActionRequired,
    PaymentFailed,
    ProductArchived,
    ProductCreated,
    ProductUpdated,
    ReturnStatusChanged,
    ReviewCreated,
    ShippingMethodChanged,
    ShippingZoneChanged,
    StockChanged,
    Topic,
    VariantCreated,
    VariantUpdated,
)

ROOT = Path(__file__).resolve().parents[2]

# One example per topic and the exact JSON object it has always been written as.
WIRE: list[tuple[EventPayload, dict[str, Any]]] = [
    (
        OrderPlaced(order="ord_1", total=2999, currency="USD"),
        {"order": "ord_1", "total": 2999, "currency": "USD"},
    ),
    (OrderPaid(order="ord_1", payment="pi_1"), {"order": "ord_1", "payment": "pi_1"}),
    (OrderCancelled(order="ord_1", refund=None), {"order": "ord_1", "refund": None}),
    (OrderCancelled(order="ord_1", refund="re_1"), {"order": "ord_1", "refund": "re_1"}),
    (
        PaymentFailed(order="ord_1", decline_code="card_declined"),
        {"order": "ord_1", "decline_code": "card_declined"},
    ),
    (
        FulfillmentCreated(order="ord_1", fulfillment=4, status="PAID"),
        {"order": "ord_1", "fulfillment": 4, "status": "PAID"},
    ),
    (StockChanged(variant=3, available=0), {"variant": 3, "available": 0}),
    (
        OrderRefunded(order="ord_1", refund="rf_1", amount=1200, status="PAID"),
        {"order": "ord_1", "refund": "rf_1", "amount": 1200, "status": "PAID"},
    ),
    (
        ReturnStatusChanged(order="ord_1", return_id="rt_1", status="REQUESTED"),
        {"order": "ord_1", "return_id": "rt_1", "status": "REQUESTED"},
    ),
    (ProductCreated(product=1, slug="mug"), {"product": 1, "slug": "mug"}),
    (ProductUpdated(product=1, slug="mug"), {"product": 1, "slug": "mug"}),
    (
        ProductUpdated(product=1, slug="big-mug", previous_slug="mug"),
        {"product": 1, "slug": "big-mug", "previous_slug": "mug"},
    ),
    (ProductArchived(product=1, slug="mug"), {"product": 1, "slug": "mug"}),
    (VariantCreated(variant=3, product=1), {"variant": 3, "product": 1}),
    (VariantUpdated(variant=3, product=1), {"variant": 3, "product": 1}),
    (ReviewCreated(product=1, review=9), {"product": 1, "review": 9}),
    # Ciphertext only: the address and the raw token never travel in clear.
    (PasswordResetRequested(sealed="gAAAA..."), {"sealed": "gAAAA..."}),
    (
        EmailVerificationRequested(customer=7, sealed="gAAAA..."),
        {"customer": 7, "sealed": "gAAAA..."},
    ),
    (ShippingZoneChanged(zone=2), {"zone": 2}),
    (
        ShippingMethodChanged(method=5, zone=2, change="deleted"),
        {"method": 5, "zone": 2, "change": "deleted"},
    ),
    (
        GiftCardCreated(gift_card=3, initial_balance=5_000, currency_code="USD"),
        {"gift_card": 3, "initial_balance": 5_000, "currency_code": "USD"},
    ),
    (GiftCardDisabled(gift_card=3, balance=1_250), {"gift_card": 3, "balance": 1_250}),
    (
        DiscountChanged(discount=4, change="deactivated"),
        {"discount": 4, "change": "deactivated"},
    ),
    (
        OrderDisputed(order="o1", reason="fraudulent", amount=2_400),
        {"order": "o1", "reason": "fraudulent", "amount": 2_400},
    ),
    (
        PaymentActionRequired(order="ord_1", payment="pi_1"),
        {"order": "ord_1", "payment": "pi_1"},
    ),
]


def test_every_topic_has_exactly_one_payload_class() -> None:
    assert set(PAYLOADS) == set(Topic)
    for topic, payload_class in PAYLOADS.items():
        assert payload_class.topic is topic
        assert payload_class.__name__ == topic.value  # the class is named as the wire topic
        assert dataclasses.is_dataclass(payload_class)
        assert payload_class.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_the_examples_cover_every_topic() -> None:
    assert {type(payload).topic for payload, _ in WIRE} == set(Topic)


@pytest.mark.parametrize(("payload", "wire"), WIRE, ids=lambda p: type(p).__name__)
def test_a_payload_is_written_in_the_wire_format_and_read_back(
    payload: EventPayload, wire: dict[str, Any]
) -> None:
    written = payload.to_wire()
    assert written == wire
    assert list(written) == list(wire)  # and in that order
    # Through JSON, as the outbox and the stream carry it, and parsed back by topic.
    event = Event(id=1, topic=payload.topic, payload=orjson.loads(orjson.dumps(written)))
    assert event.parsed() == payload


def test_topics_are_the_strings_on_the_wire() -> None:
    assert Topic.ORDER_PAID == "OrderPaid"
    assert Topic("StockChanged") is Topic.STOCK_CHANGED


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("StockChanged", {"variant": "3", "available": 0}),  # a string id
        ("StockChanged", {"variant": True, "available": 0}),  # bool is not an int
        ("StockChanged", {"variant": 3}),  # a field missing
        ("ProductCreated", {"product": 1, "slug": ""}),  # an empty slug
        ("ProductUpdated", {"product": 1, "slug": "mug", "previous_slug": 5}),
        ("OrderCancelled", {"order": "ord_1"}),  # refund is nullable, not optional
        ("NoSuchTopic", {"order": "ord_1"}),
    ],
)
def test_a_payload_that_breaks_its_topics_promise_is_malformed(
    topic: str, payload: dict[str, Any]
) -> None:
    with pytest.raises(MalformedEvent):
        Event(id=5, topic=topic, payload=payload).parsed()


def test_unknown_extra_fields_are_ignored_so_an_older_reader_survives_a_newer_writer() -> None:
    event = Event(id=5, topic="OrderPaid", payload={"order": "o", "payment": "p", "new": 1})
    assert event.parsed() == OrderPaid(order="o", payment="p")


def test_only_the_outbox_module_inserts_into_the_outbox() -> None:
    # emit(connection, payload) is the one way in: nothing else builds outbox rows.
    offenders = []
    for path in [*ROOT.glob("*.py"), *ROOT.glob("[!.]*/**/*.py")]:
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {"tests", "bench"} or relative.parts[:2] == (
            "persistence",
            "migrations",
        ):
            continue
        if relative == Path("persistence/events/outbox.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "insert"
                and any(isinstance(a, ast.Name) and a.id == "outbox" for a in node.args)
            ):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []
