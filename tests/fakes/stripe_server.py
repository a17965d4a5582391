"""A local fake of the few Stripe endpoints the gateway calls, for adapter contract tests.

`running_stripe_fake()` serves a Starlette app with uvicorn on 127.0.0.1 (a free port, a
background thread with its own event loop) and yields a `StripeFake`: point the real
stripe SDK at `fake.url`, then read what it sent in `fake.requests`.

What it mimics, and only that:

- `POST /v1/payment_intents` with `confirm=true`, answering by payment method as Stripe's
  test mode does (`pm_card_visa`, `pm_card_mastercard`, `pm_card_chargeDeclined`,
  `pm_card_chargeDeclinedInsufficientFunds`, `pm_card_authenticationRequired`; any other
  id is `resource_missing`). Declines still create a PaymentIntent, as on Stripe.
- `POST /v1/refunds` against an intent the fake created.
- `GET /v1/payment_intents/{id}` (with `expand[]=latest_charge`), `GET
  /v1/payment_intents/search` for the one query the gateway sends
  (`metadata['order_id']:'<id>'`; the fake's search sees writes at once, Stripe's lags),
  and `POST /v1/payment_intents/{id}/cancel` (refused once the intent succeeded).
- `pm_card_authenticationRequired` and `pm_card_threeDSecure2Required` answer
  `requires_action` with a `client_secret`; `complete_action(id, succeed=...)` plays the
  customer finishing (or failing) 3-D Secure and returns the webhook event Stripe sends.
- Idempotency: the first response for an `Idempotency-Key` is stored and replayed for
  every later request with that key; reusing a key with other parameters (or on another
  endpoint) is a 400 `idempotency_error`. Injected failures are not stored.
- `Authorization: Bearer <api_key>` with the fake's key, else 401.

Knobs: `hang_next(n)` processes the next n requests (stores their result) and then
withholds the response until the fake stops — a charge that happened but whose answer
never arrived; `fail_next(n, status)` answers the next n requests with a Stripe
`api_error` without processing them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.serving import serving_in_thread

API_KEY = "sk_test_fake"
HANG_LIMIT_SECONDS = 30.0  # a hung request is released at shutdown, or after this at most

# Stripe's test payment methods: brand and last four digits of the card behind each.
CARDS = {
    "pm_card_visa": ("visa", "4242"),
    "pm_card_mastercard": ("mastercard", "4444"),
    "pm_card_chargeDeclined": ("visa", "0002"),
    "pm_card_chargeDeclinedInsufficientFunds": ("visa", "9995"),
    "pm_card_authenticationRequired": ("visa", "3184"),
    "pm_card_threeDSecure2Required": ("visa", "3220"),
}
DECLINES = {
    "pm_card_chargeDeclined": ("generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
}
NEEDS_AUTHENTICATION = {"pm_card_authenticationRequired", "pm_card_threeDSecure2Required"}
_SEARCH_BY_ORDER = re.compile(r"^metadata\['order_id'\]:'([^']*)'$")

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; `params` are the form fields exactly as
    sent, in Stripe's bracket notation (`metadata[order_id]`, `expand[0]`)."""

    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, str]


@dataclass
class _Stored:
    path: str
    params: dict[str, str]
    status: int
    body: Json


@dataclass
class StripeFake:
    """The running fake: its address, what it received and what it holds."""

    url: str = ""
    api_key: str = API_KEY
    requests: list[RecordedRequest] = field(default_factory=list)
    payment_intents: dict[str, Json] = field(default_factory=dict)
    refunds: dict[str, Json] = field(default_factory=dict)
    charges: dict[str, Json] = field(default_factory=dict)  # by intent id
    _hang: int = 0
    _failures: list[int] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)
    _stored: dict[str, _Stored] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def hang_next(self, count: int = 1) -> None:
        """Process the next `count` requests, then withhold their responses."""
        self._hang += count

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` requests with an `api_error`, processing nothing."""
        self._failures.extend([status] * count)

    def complete_action(self, intent_id: str, *, succeed: bool = True) -> bytes:
        """The customer finishes (succeed) or fails 3-D Secure for a `requires_action`
        intent; the body of the webhook Stripe would send about it (sign it to post)."""
        intent = self.payment_intents[intent_id]
        assert intent["status"] == "requires_action", intent["status"]
        if succeed:
            self._succeed(intent)
            kind = "payment_intent.succeeded"
        else:
            error = {
                "type": "card_error",
                "code": "payment_intent_authentication_failure",
                "message": "We are unable to authenticate your payment method.",
            }
            intent.update(status="requires_payment_method", last_payment_error=error)
            kind = "payment_intent.payment_failed"
        intent["next_action"] = None
        return self.event(kind, intent_id)

    def event(self, kind: str, intent_id: str) -> bytes:
        """A webhook event body about an intent, as it is now."""
        body = {
            "id": f"evt_fake{next(self._ids):06d}",
            "object": "event",
            "type": kind,
            "data": {"object": dict(self.payment_intents[intent_id])},
        }
        return json.dumps(body).encode()

    def release_hung_requests(self) -> None:
        """Let withheld responses go (done when the fake stops)."""
        self._released.set()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    # The handlers below run on the server's thread, one at a time (a single event
    # loop and no await between reading and writing the state), so they need no lock.

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        params = dict(parse_qsl(body, keep_blank_values=True))
        if request.method == "GET":
            params = dict(request.query_params)
        key = request.headers.get("idempotency-key")
        self.requests.append(RecordedRequest(request.method, request.url.path, key, params))

        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "Invalid API Key provided.")
        if self._failures:
            status = self._failures.pop(0)
            return _error(status, "api_error", "An unknown error occurred.")

        status, payload, replayed = self._respond(request.url.path, key, params)
        if self._hang:
            self._hang -= 1
            await self._wait_for_release()
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        return JSONResponse(payload, status_code=status, headers=headers)

    def _respond(
        self, path: str, key: str | None, params: dict[str, str]
    ) -> tuple[int, Json, bool]:
        """The status and body for a request, and whether they replay a stored answer."""
        if key is not None and key in self._stored:
            stored = self._stored[key]
            if (stored.path, stored.params) != (path, params):
                return *_error_body(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same "
                    f"parameters they were first used with. Try using a key other than '{key}'.",
                ), False
            return stored.status, stored.body, True
        if path == "/v1/payment_intents":
            status, payload = self._create_payment_intent(params)
        elif path == "/v1/refunds":
            status, payload = self._create_refund(params)
        elif path == "/v1/payment_intents/search":
            status, payload = self._search(params)
        elif path.endswith("/cancel"):
            status, payload = self._cancel(path.split("/")[-2])
        else:
            status, payload = self._retrieve(path.split("/")[-1], params)
        if key is not None:
            self._stored[key] = _Stored(path, params, status, payload)
        return status, payload, False

    def _create_payment_intent(self, params: dict[str, str]) -> tuple[int, Json]:
        method = params.get("payment_method", "")
        if method not in CARDS:
            return _error_body(
                400,
                "invalid_request_error",
                f"No such PaymentMethod: '{method}'",
                code="resource_missing",
                param="payment_method",
            )
        number = next(self._ids)
        brand, last4 = CARDS[method]
        intent: Json = {
            "id": f"pi_fake{number:06d}",
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "amount_received": 0,
            "currency": params["currency"],
            "description": params.get("description"),
            "livemode": False,
            "metadata": _nested(params, "metadata"),
            "payment_method": method,
            "latest_charge": None,
            "last_payment_error": None,
            "next_action": None,
            "client_secret": f"pi_fake{number:06d}_secret_{secrets.token_urlsafe(12)}",
        }
        self.payment_intents[intent["id"]] = intent

        if method in DECLINES:
            decline_code, message = DECLINES[method]
            card = {"brand": brand, "last4": last4}
            error: Json = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": decline_code,
                "message": message,
                "payment_method": {"id": method, "object": "payment_method", "card": card},
            }
            intent.update(status="requires_payment_method", last_payment_error=error)
            return 402, {"error": {**error, "payment_intent": intent}}
        if method in NEEDS_AUTHENTICATION:
            intent.update(
                status="requires_action",
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {"type": "three_d_secure_redirect"},
                },
            )
            return 200, dict(intent)

        self._succeed(intent)
        return 200, self._shown(intent, params)

    def _succeed(self, intent: Json) -> None:
        brand, last4 = CARDS[intent["payment_method"]]
        number = int(intent["id"].removeprefix("pi_fake"))
        self.charges[intent["id"]] = {
            "id": f"ch_fake{number:06d}",
            "object": "charge",
            "amount": intent["amount"],
            "currency": intent["currency"],
            "paid": True,
            "status": "succeeded",
            "payment_intent": intent["id"],
            "payment_method_details": {"type": "card", "card": {"brand": brand, "last4": last4}},
        }
        intent.update(status="succeeded", amount_received=intent["amount"])
        intent["latest_charge"] = f"ch_fake{number:06d}"

    def _shown(self, intent: Json, params: dict[str, str], expand: str = "expand") -> Json:
        """The intent as an answer: its charge expanded when asked."""
        wanted = [e.removeprefix("data.") for e in _list(params, expand)]
        wanted += [v for k, v in params.items() if k == f"{expand}[]"]
        charge = self.charges.get(intent["id"])
        if "latest_charge" in wanted and charge is not None:
            return {**intent, "latest_charge": charge}
        return dict(intent)

    def _retrieve(self, intent_id: str, params: dict[str, str]) -> tuple[int, Json]:
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            return _no_such_intent(intent_id)
        return 200, self._shown(intent, params)

    def _search(self, params: dict[str, str]) -> tuple[int, Json]:
        match = _SEARCH_BY_ORDER.match(params.get("query", ""))
        if match is None:
            return _error_body(400, "invalid_request_error", "unsupported search query")
        found = [
            self._shown(intent, params)
            for intent in self.payment_intents.values()
            if intent["metadata"].get("order_id") == match.group(1)
        ]
        return 200, {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "has_more": False,
            "next_page": None,
            "data": found,
        }

    def _cancel(self, intent_id: str) -> tuple[int, Json]:
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            return _no_such_intent(intent_id)
        if intent["status"] in ("succeeded", "canceled"):
            return _error_body(
                400,
                "invalid_request_error",
                "You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        intent.update(status="canceled", next_action=None)
        return 200, dict(intent)

    def _create_refund(self, params: dict[str, str]) -> tuple[int, Json]:
        intent = self.payment_intents.get(params.get("payment_intent", ""))
        if intent is None or intent["status"] != "succeeded":
            return _error_body(
                400,
                "invalid_request_error",
                f"No such payment_intent: '{params.get('payment_intent')}'",
                code="resource_missing",
                param="payment_intent",
            )
        refunded = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
        )
        amount = int(params.get("amount", intent["amount"] - refunded))
        if amount > intent["amount"] - refunded:
            return _error_body(
                400,
                "invalid_request_error",
                "Refund amount is greater than the amount that can be refunded.",
                code="amount_too_large",
                param="amount",
            )
        refund: Json = {
            "id": f"re_fake{next(self._ids):06d}",
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        return 200, refund

    async def _wait_for_release(self) -> None:
        await asyncio.to_thread(self._released.wait, HANG_LIMIT_SECONDS)


def _nested(params: dict[str, str], name: str) -> dict[str, str]:
    """`metadata[order_id]=x` → {"order_id": "x"} (one level, all we need)."""
    prefix = f"{name}["
    return {k[len(prefix) : -1]: v for k, v in params.items() if k.startswith(prefix)}


def _list(params: dict[str, str], name: str) -> list[str]:
    """`expand[0]=a&expand[1]=b` → ["a", "b"]."""
    return list(_nested(params, name).values())


def _no_such_intent(intent_id: str) -> tuple[int, Json]:
    return _error_body(
        404,
        "invalid_request_error",
        f"No such payment_intent: '{intent_id}'",
        code="resource_missing",
        param="intent",
    )


def _error_body(
    status: int, kind: str, message: str, *, code: str | None = None, param: str | None = None
) -> tuple[int, Json]:
    error: Json = {"type": kind, "message": message}
    if code is not None:
        error["code"] = code
    if param is not None:
        error["param"] = param
    return status, {"error": error}


def _error(status: int, kind: str, message: str) -> Response:
    status, body = _error_body(status, kind, message)
    return JSONResponse(body, status_code=status)


@contextmanager
def running_stripe_fake(api_key: str = API_KEY) -> Iterator[StripeFake]:
    """Serve a fresh fake on 127.0.0.1 for the duration of the block."""
    fake = StripeFake(api_key=api_key)
    app = Starlette(
        routes=[
            Route("/v1/payment_intents", fake.handle, methods=["POST"]),
            Route("/v1/payment_intents/search", fake.handle, methods=["GET"]),
            Route("/v1/payment_intents/{intent}", fake.handle, methods=["GET"]),
            Route("/v1/payment_intents/{intent}/cancel", fake.handle, methods=["POST"]),
            Route("/v1/refunds", fake.handle, methods=["POST"]),
        ]
    )
    with serving_in_thread(app, "Stripe") as url:
        fake.url = url
        try:
            yield fake
        finally:
            fake.release_hung_requests()  # before the server waits for them to finish
