"""Order status for whoever holds the order's status token: a guest reloading the
confirmation or polling a pending payment, without an account.

The token is HMAC-SHA256(ORDER_STATUS_TOKEN_KEY, the order's public id): 256 bits no one
can guess without the key. Only its SHA-256 is stored (orders.status_token_hash), so a
dump of the database opens no order; and because the server can derive it again, the
idempotent replay of a checkout and the confirmation mail (sent later, by the worker)
hand out the same token without it ever resting in clear. Rotating the key would make
every token issued before it stop working: the key is kept, not rotated.

Failed look-ups are throttled per client; successes cost nothing against the limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import replace
from typing import Protocol

from domain.errors import ThrottledError
from domain.orders import Order, OrderStatus
from domain.payments import PaymentAction

TOKEN_LENGTH = 43  # 32 bytes, base64url without padding
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


class StatusTokens:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the order status token key needs at least 32 bytes")
        self._key = key

    def token_for(self, public_id: str) -> str:
        mac = hmac.new(self._key, b"order-status:" + public_id.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def hash_for(self, public_id: str) -> str:
        return token_hash(self.token_for(public_id))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    """Checked before any I/O: the length first, so a huge string costs nothing more."""
    return len(token) == TOKEN_LENGTH and _TOKEN.fullmatch(token) is not None


class OrdersByStatusToken(Protocol):
    async def by_status_token_hash(self, token_hash: str) -> Order | None: ...

    async def payment_action(self, order_id: int) -> PaymentAction | None: ...


class FailureThrottle(Protocol):
    async def blocked(self, client: str) -> bool: ...

    async def failed(self, client: str) -> None: ...


class OrderStatusLookup:
    def __init__(self, orders: OrdersByStatusToken, throttle: FailureThrottle) -> None:
        self._orders = orders
        self._throttle = throttle

    async def find(self, token: str, client: str) -> Order | None:
        """The order this token opens, or None (unknown, malformed, too long: no hint
        which). ThrottledError once the client has failed too often in the window."""
        if not well_formed(token):
            return None  # cannot match any order: not worth a counter either
        if await self._throttle.blocked(client):
            raise ThrottledError("too many unknown status tokens from this client; retry later")
        order = await self._orders.by_status_token_hash(token_hash(token))
        if order is None:
            await self._throttle.failed(client)
            return None
        if order.status is OrderStatus.PAYMENT_ACTION_REQUIRED:  # the holder is the buyer
            order = replace(order, payment_action=await self._orders.payment_action(order.id))
        return order
