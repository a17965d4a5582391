"""POST /webhooks/stripe: verified gateway events settle pending orders, once each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from domain.order_desk import OrderDesk
from integrations.stripe_webhooks import InvalidWebhook, parse_stripe_event
from settings import Settings, revealed

MAX_WEBHOOK_BYTES = 256 * 1024


def stripe_webhook(
    settings: Settings, orders: Callable[[], OrderDesk]
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint; `orders` gives the running app's order desk (it exists once the app
    has started, after this is built)."""

    async def receive(request: Request) -> Response:
        secret: str | None = revealed(settings.stripe_webhook_secret)
        if not secret:
            return JSONResponse({"error": "webhooks are not configured"}, status_code=404)
        payload = await request.body()
        if len(payload) > MAX_WEBHOOK_BYTES:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        try:
            event = parse_stripe_event(payload, request.headers.get("stripe-signature"), secret)
        except InvalidWebhook as error:
            # Nothing is changed for an event we cannot prove came from the gateway.
            return JSONResponse({"error": str(error)}, status_code=400)
        # 200 even for an event we ignore (named mismatch in `outcome`): a non-2xx would
        # only make the gateway resend it.
        first, outcome = await orders().settle(event)
        return JSONResponse({"received": True, "duplicate": not first, "outcome": outcome})

    return receive
