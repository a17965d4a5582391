"""In-memory accounts ports: customers (unique by email), a transparent password hasher
that records what it verified, sessions with opaque tokens, and a login throttle that
counts failures per email."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from domain.customers import AccessToken, Customer

if TYPE_CHECKING:
    from domain.customers import CustomerRepository, LoginThrottle, PasswordHasher, SessionStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class FakePasswordHasher:
    """Not a hash at all (tests read it); `verified` lists every hash checked, so a test
    can see that an unknown email costs a verification too."""

    def __init__(self) -> None:
        self.verified: list[str] = []

    def hash(self, password: str) -> str:
        return f"hashed:{password}"

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash == f"hashed:{password}"


class FakeCustomerRepository:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[Customer, str | None]] = {}  # by lower-cased email

    async def create(self, email: str, display_name: str, password_hash: str) -> Customer | None:
        if email.lower() in self.rows:
            return None
        customer = Customer(len(self.rows) + 1, email, display_name, False, T0)
        self.rows[email.lower()] = (customer, password_hash)
        return customer

    async def credentials(self, email: str) -> tuple[Customer, str | None] | None:
        return self.rows.get(email.lower())

    async def by_ids(self, ids: Sequence[int]) -> dict[int, Customer]:
        return {c.id: c for c, _ in self.rows.values() if c.id in ids}


class FakeSessionStore:
    def __init__(self, ttl_seconds: int = 3600) -> None:
        self.sessions: dict[str, int] = {}  # token -> customer id
        self._ttl = timedelta(seconds=ttl_seconds)

    async def create(self, customer_id: int) -> AccessToken:
        token = secrets.token_urlsafe(32)
        self.sessions[token] = customer_id
        return AccessToken(token, datetime.now(UTC) + self._ttl)

    async def customer_id(self, token: str) -> int | None:
        return self.sessions.get(token)

    async def revoke(self, token: str) -> bool:
        return self.sessions.pop(token, None) is not None

    async def revoke_all(self, customer_id: int, *, keep: str | None = None) -> int:
        ended = [t for t, owner in self.sessions.items() if owner == customer_id and t != keep]
        for token in ended:
            del self.sessions[token]
        return len(ended)


class FakeLoginThrottle:
    def __init__(self, limit: int = 5) -> None:
        self.limit = limit
        self.failures: Counter[str] = Counter()  # by email
        self.clients: Counter[str] = Counter()  # by client address

    async def blocked(self, email: str, client: str) -> bool:
        return self.failures[email] >= self.limit

    async def failed(self, email: str, client: str) -> None:
        self.failures[email] += 1
        self.clients[client] += 1

    async def succeeded(self, email: str) -> None:
        self.failures[email] = 0


if TYPE_CHECKING:
    _hasher: PasswordHasher = FakePasswordHasher()
    _customers: CustomerRepository = FakeCustomerRepository()
    _sessions: SessionStore = FakeSessionStore()
    _throttle: LoginThrottle = FakeLoginThrottle()
