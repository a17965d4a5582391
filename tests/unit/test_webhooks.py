"""Partner webhooks without I/O: which addresses and URLs are refused, event names, the
payload of every partner event, the signature, and the retry schedule."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from domain.events import Event
from domain.webhook_urls import MAX_URL_LENGTH, check_url, is_public_address
from domain.webhooks import (
    PARTNER_EVENTS,
    RetryPolicy,
    check_events,
    outgoing_events,
    signature,
    verify_signature,
)
from settings import Settings


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",  # multicast
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "192.0.2.1",  # documentation
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001:db8::1",  # documentation
    ],
)
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_global_unicast_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://example.com", "only http:// and https://"),
        ("https:///nohost", "a host is needed"),
        ("https://user:pw@example.com/", "no user or password"),
        ("https://example.com/#frag", "no #fragment"),
        ("https://exa mple.com/", "no spaces"),
        ("https://example.com/\r\nX-Injected: 1", "no spaces or control characters"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://ex_ample!.com/", "not a valid host name"),
        ("http://127.0.0.1/", "not a public address"),
        ("http://[::1]:8080/", "not a public address"),
        ("http://169.254.169.254/latest/", "not a public address"),
        ("http://10.0.0.7/", "not a public address"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "at most"),
        ("", "only http:// and https://"),
    ],
)
def test_hostile_urls_are_refused_with_a_reason(url: str, why: str) -> None:
    target, problem = check_url(url, allow_private=False)

    assert target is None
    assert problem is not None and why in problem


def test_a_public_https_url_is_accepted_and_private_ones_only_when_allowed() -> None:
    target, problem = check_url("https://Hooks.Example.com/in?x=1", allow_private=False)
    assert problem is None and target is not None
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.com", 443)

    assert check_url("http://127.0.0.1:8000/", allow_private=True)[1] is None


def test_event_names_are_checked_against_what_partners_may_receive() -> None:
    assert check_events(["OrderPaid", " OrderPaid", "OrderFulfilled"]) == (
        ["OrderPaid", "OrderFulfilled"],
        None,
    )
    names, problem = check_events(["OrderPaid", "PasswordResetRequested", "x" * 10_000])
    assert names == []
    assert problem is not None and "'PasswordResetRequested'" in problem
    assert len(problem) < 500  # a huge name is not echoed back whole
    assert check_events([" ", ""])[1] is not None


def _one(event: Event) -> dict[str, object]:
    [made] = outgoing_events(event, "USD")
    document: dict[str, object] = json.loads(made.body)
    assert document["id"] == made.event_id and document["type"] == made.event_type
    return document


def test_each_partner_event_carries_only_its_documented_fields() -> None:
    placed = _one(Event(7, "OrderPlaced", {"order": "o_1", "total": 2450, "currency": "USD"}))
    assert placed["data"] == {"order": "o_1", "total": {"amount": "24.50", "currencyCode": "USD"}}
    assert placed["id"] == "evt_7.OrderPlaced"
    paid = _one(Event(8, "OrderPaid", {"order": "o_1", "payment": "pi_secret"}))
    assert paid["data"] == {"order": "o_1"}  # the gateway's payment id stays inside
    refunded = _one(
        Event(
            9, "OrderRefunded", {"order": "o_1", "refund": "r_1", "amount": 500, "status": "PAID"}
        )
    )
    assert refunded["data"] == {
        "order": "o_1",
        "refund": "r_1",
        "amount": {"amount": "5.00", "currencyCode": "USD"},
        "orderStatus": "PAID",
    }


def test_a_last_fulfilment_is_also_an_order_fulfilled_and_a_partial_one_is_not() -> None:
    partial = Event(1, "FulfillmentCreated", {"order": "o", "fulfillment": 3, "status": "PAID"})
    last = Event(2, "FulfillmentCreated", {"order": "o", "fulfillment": 4, "status": "FULFILLED"})

    assert [e.event_type for e in outgoing_events(partial, "USD")] == ["FulfillmentCreated"]
    assert [(e.event_type, e.event_id) for e in outgoing_events(last, "USD")] == [
        ("FulfillmentCreated", "evt_2.FulfillmentCreated"),
        ("OrderFulfilled", "evt_2.OrderFulfilled"),
    ]


def test_internal_only_topics_make_no_partner_event() -> None:
    for topic in ("PasswordResetRequested", "StockChanged", "GiftCardCreated"):
        assert topic not in PARTNER_EVENTS
    assert outgoing_events(Event(1, "PasswordResetRequested", {"sealed": "x"}), "USD") == []


def test_the_signature_is_stripe_style_and_verifies_only_the_same_body_and_secret() -> None:
    body = b'{"id":"evt_1.OrderPaid"}'
    header = signature("whsec_a", 1_700_000_000, body)

    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify_signature("whsec_a", header, body, now=1_700_000_010)
    assert not verify_signature("whsec_b", header, body, now=1_700_000_010)
    assert not verify_signature("whsec_a", header, body + b" ", now=1_700_000_010)
    assert not verify_signature("whsec_a", header, body, now=1_700_000_000 + 301)  # replayed
    assert not verify_signature("whsec_a", "t=abc,v1=00", body, now=1_700_000_000)
    assert not verify_signature("whsec_a", "garbage", body, now=1_700_000_000)


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(first_delay_seconds=30, max_delay_seconds=3600)

    assert [policy.delay(n, 1.0) for n in range(1, 9)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600
    ]  # fmt: skip
    assert policy.delay(3, 0.0) == 60  # equal jitter: between half and all of the step
    assert policy.delay(10_000, 0.999) <= 3600  # no overflow on a huge attempt count
    # Over 24 h that is about 30 attempts.
    waited, attempts = 0.0, 0
    while waited < 24 * 3600:
        attempts += 1
        waited += policy.delay(attempts, 1.0)
    assert 25 <= attempts <= 35


def test_production_refuses_webhooks_to_private_addresses() -> None:
    from pydantic import ValidationError

    from tests.unit.test_settings_secrets import SECRETS

    production = {"_env_file": None, "environment": "production", "payment_gateway": "stripe"}
    assert not Settings(**production, **SECRETS).webhook_allow_private_addresses
    with pytest.raises(ValidationError, match="WEBHOOK_ALLOW_PRIVATE_ADDRESSES"):
        Settings(**production, **SECRETS, webhook_allow_private_addresses=True)
    assert Settings(_env_file=None, environment="test", webhook_allow_private_addresses=True)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _docs_block(language: str) -> str:
    text = DOCS.read_text()
    start = text.index(f"```{language}\n") + len(language) + 4
    return text[start : text.index("```", start)]


def _signed(secret: str) -> tuple[str, bytes]:
    body = b'{"id":"evt_5.OrderPaid","type":"OrderPaid","data":{"order":"o"}}'
    return signature(secret, int(time.time()), body), body


def test_the_python_verification_in_the_partner_guide_accepts_our_signature_only() -> None:
    namespace: dict[str, Any] = {}
    exec(_docs_block("python"), namespace)  # the guide's code, as a partner pastes it
    verify = namespace["verify"]
    header, body = _signed("whsec_guide")

    assert verify("whsec_guide", header, body) is True
    assert verify("whsec_other", header, body) is False
    assert verify("whsec_guide", header, body + b"x") is False
    assert verify("whsec_guide", signature("whsec_guide", 1_000, body), body) is False  # old


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_node_verification_in_the_partner_guide_accepts_our_signature_only(
    tmp_path: Path,
) -> None:
    code = _docs_block("js").split("app.post(")[0]  # the function, not the Express route
    header, body = _signed("whsec_guide")
    script = tmp_path / "verify.js"
    script.write_text(
        code
        + "const [secret, header, body] = process.argv.slice(2);\n"
        + "console.log([verify(secret, header, Buffer.from(body)),"
        + " verify('whsec_other', header, Buffer.from(body)),"
        + " verify(secret, header, Buffer.from(body + 'x'))].join(','));\n"
    )

    done = subprocess.run(
        ["node", str(script), "whsec_guide", header, body.decode()],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip

    assert done.stdout.strip() == "true,false,false"
