"""Log-in rules with in-memory fakes of the ports: no account guessing, throttling."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from domain.customers import AccessToken, Accounts, Customer
from domain.errors import Rejected, UserErrorCode


class Hasher:
    def __init__(self) -> None:
        self.verified: list[str] = []

    def hash(self, password: str) -> str:
        return f"hashed:{password}"

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified.append(password_hash)
        return password_hash == f"hashed:{password}"


class Customers:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[Customer, str]] = {}

    async def create(self, email: str, display_name: str, password_hash: str) -> Customer | None:
        if email.lower() in self.rows:
            return None
        customer = Customer(len(self.rows) + 1, email, display_name, False, datetime.now(UTC))
        self.rows[email.lower()] = (customer, password_hash)
        return customer

    async def credentials(self, email: str) -> tuple[Customer, str | None] | None:
        return self.rows.get(email.lower())

    async def by_ids(self, ids: Sequence[int]) -> dict[int, Customer]:
        return {c.id: c for c, _ in self.rows.values() if c.id in ids}


class Sessions:
    async def create(self, customer_id: int) -> AccessToken:
        return AccessToken(f"token-{customer_id}", datetime.now(UTC))

    async def customer_id(self, token: str) -> int | None:
        return int(token.removeprefix("token-")) if token.startswith("token-") else None

    async def revoke(self, token: str) -> bool:
        return True


class Throttle:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.failures: Counter[str] = Counter()

    async def blocked(self, email: str, client: str) -> bool:
        return self.failures[email] >= self.limit

    async def failed(self, email: str, client: str) -> None:
        self.failures[email] += 1

    async def succeeded(self, email: str) -> None:
        self.failures[email] = 0


@pytest.fixture
async def accounts() -> tuple[Accounts, Hasher, Throttle]:
    hasher, throttle = Hasher(), Throttle(limit=5)
    service = Accounts(Customers(), hasher, Sessions(), throttle)
    await service.register("ann@example.com", "correct horse", "Ann")
    hasher.verified.clear()
    return service, hasher, throttle


async def test_unknown_email_and_wrong_password_look_the_same_and_cost_the_same(
    accounts: tuple[Accounts, Hasher, Throttle],
) -> None:
    service, hasher, _ = accounts
    outcomes = []
    for email, password in (
        ("nobody@example.com", "correct horse"),
        ("ann@example.com", "wrong horse"),
    ):
        with pytest.raises(Rejected) as raised:
            await service.log_in(email, password, "10.0.0.1")
        outcomes.append([(e.code, e.message, e.field) for e in raised.value.errors])

    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0][0] is UserErrorCode.INVALID_CREDENTIALS
    assert len(hasher.verified) == 2  # a hash is verified even for the unknown email


async def test_five_failures_throttle_even_the_right_password(
    accounts: tuple[Accounts, Hasher, Throttle],
) -> None:
    service, _, _ = accounts
    for _ in range(5):
        with pytest.raises(Rejected):
            await service.log_in("ANN@example.com", "nope-nope", "10.0.0.1")

    with pytest.raises(Rejected) as raised:
        await service.log_in("ann@example.com", "correct horse", "10.0.0.1")

    assert raised.value.errors[0].code is UserErrorCode.THROTTLED


async def test_a_good_login_resets_the_email_counter(
    accounts: tuple[Accounts, Hasher, Throttle],
) -> None:
    service, _, throttle = accounts
    for _ in range(4):
        with pytest.raises(Rejected):
            await service.log_in("ann@example.com", "nope-nope", "10.0.0.1")

    token = await service.log_in("ann@example.com", "correct horse", "10.0.0.1")

    assert throttle.failures["ann@example.com"] == 0
    assert (await service.customer_for(token.token)) is not None
