"""Log-in rules with in-memory fakes of the ports: no account guessing, throttling."""

from __future__ import annotations

import pytest

from domain.customers import Accounts
from domain.errors import Rejected, UserErrorCode
from tests.fakes.accounts import (
    FakeCustomerRepository,
    FakeLoginThrottle,
    FakePasswordHasher,
    FakeSessionStore,
)


@pytest.fixture
async def accounts() -> tuple[Accounts, FakePasswordHasher, FakeLoginThrottle]:
    hasher, throttle = FakePasswordHasher(), FakeLoginThrottle(limit=5)
    service = Accounts(FakeCustomerRepository(), hasher, FakeSessionStore(), throttle)
    await service.register("ann@example.com", "correct horse", "Ann")
    hasher.verified.clear()
    return service, hasher, throttle


async def test_unknown_email_and_wrong_password_look_the_same_and_cost_the_same(
    accounts: tuple[Accounts, FakePasswordHasher, FakeLoginThrottle],
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
    accounts: tuple[Accounts, FakePasswordHasher, FakeLoginThrottle],
) -> None:
    service, _, _ = accounts
    for _ in range(5):
        with pytest.raises(Rejected):
            await service.log_in("ANN@example.com", "nope-nope", "10.0.0.1")

    with pytest.raises(Rejected) as raised:
        await service.log_in("ann@example.com", "correct horse", "10.0.0.1")

    assert raised.value.errors[0].code is UserErrorCode.THROTTLED


async def test_a_good_login_resets_the_email_counter(
    accounts: tuple[Accounts, FakePasswordHasher, FakeLoginThrottle],
) -> None:
    service, _, throttle = accounts
    for _ in range(4):
        with pytest.raises(Rejected):
            await service.log_in("ann@example.com", "nope-nope", "10.0.0.1")

    token = await service.log_in("ann@example.com", "correct horse", "10.0.0.1")

    assert throttle.failures["ann@example.com"] == 0
    assert (await service.customer_for(token.token)) is not None
