"""Account-change rules through the shared fakes: recovery never asks whether an account
exists, refused input writes nothing, tokens are single use, erasure's order of steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.account_changes import AccountChanges, ProfileChanges, TokenLifetimes
from domain.account_tokens import IssuedToken, SealedMail, token_digest
from domain.customers import Accounts, Customer
from domain.erasure import Erasure
from domain.errors import Rejected, UserErrorCode
from tests.fakes.account_changes import (
    FakeAccountRecords,
    FakeAddressBook,
    FakeCustomerCarts,
    FakeSealer,
)
from tests.fakes.accounts import FakeLoginThrottle, FakePasswordHasher, FakeSessionStore


class Shop:
    def __init__(self) -> None:
        self.records = FakeAccountRecords()
        self.sessions = FakeSessionStore()
        self.recovery = FakeLoginThrottle(limit=5)
        hasher, throttle = FakePasswordHasher(), FakeLoginThrottle(limit=5)
        accounts = Accounts(self.records, hasher, self.sessions, throttle)
        self.changes = AccountChanges(
            accounts,
            self.records,
            hasher,
            self.sessions,
            throttle,
            self.recovery,
            FakeSealer(),
            TokenLifetimes(password_reset_seconds=3600, email_verification_seconds=3600),
            clock=lambda: datetime.now(UTC),
        )

    async def ann(self) -> Customer:
        return await self.changes.register("ann@example.com", "correct horse", "Ann")


def _codes(raised: pytest.ExceptionInfo[Rejected]) -> list[UserErrorCode]:
    return [e.code for e in raised.value.errors]


async def test_recover_does_the_same_work_for_any_address() -> None:
    shop = Shop()
    await shop.ann()
    shop.records.calls.clear()

    await shop.changes.recover("ann@example.com", "10.0.0.1")
    await shop.changes.recover("nobody@example.com", "10.0.0.1")

    # No lookup at all: the answer cannot depend on the account.
    assert shop.records.calls == ["queue_password_reset", "queue_password_reset"]
    sealed = [SealedMail.open(FakeSealer(), s) for s in shop.records.queued]
    assert [m.to for m in sealed] == ["ann@example.com", "nobody@example.com"]
    assert all("ann@example.com" not in s for s in shop.records.queued)  # never in clear
    assert len({m.token for m in sealed}) == 2 and all(len(m.token) >= 43 for m in sealed)


async def test_a_reset_token_is_single_use_and_ends_every_session() -> None:
    shop = Shop()
    ann = await shop.ann()
    await shop.sessions.create(ann.id)
    await shop.changes.recover("ann@example.com", "10.0.0.1")
    mail = SealedMail.open(FakeSealer(), shop.records.queued[0])
    await shop.records.grant_password_reset(
        mail.to, IssuedToken(mail.token, token_digest(mail.token), mail.expires_at)
    )

    customer, access = await shop.changes.reset(mail.token, "a new password")
    with pytest.raises(Rejected) as again:
        await shop.changes.reset(mail.token, "another password")

    assert customer.id == ann.id
    assert list(shop.sessions.sessions) == [access.token]  # only the new one is alive
    assert _codes(again) == [UserErrorCode.INVALID_TOKEN]


async def test_refused_profile_input_writes_nothing() -> None:
    shop = Shop()
    ann = await shop.ann()
    shop.records.calls.clear()

    with pytest.raises(Rejected) as raised:
        await shop.changes.update(
            ann, "t", "10.0.0.1", ProfileChanges(name=" ", email="nope", password="short")
        )

    assert set(_codes(raised)) == {
        UserErrorCode.BLANK,
        UserErrorCode.INVALID,
        UserErrorCode.TOO_SHORT,
    }
    assert shop.records.calls == []


async def test_a_wrong_current_password_writes_nothing_and_counts_as_a_failed_login() -> None:
    shop = Shop()
    ann = await shop.ann()
    shop.records.calls.clear()

    with pytest.raises(Rejected) as raised:
        await shop.changes.update(
            ann, "t", "10.0.0.1", ProfileChanges(password="a new one!", current_password="guess")
        )

    assert _codes(raised) == [UserErrorCode.INVALID_CREDENTIALS]
    assert "update_profile" not in shop.records.calls


async def test_erasure_removes_the_record_last_and_ends_tokens_around_it() -> None:
    records = FakeAccountRecords()
    await records.create("ann@example.com", "Ann", "hashed:x")
    sessions = FakeSessionStore()
    token = await sessions.create(1)
    erasure = Erasure(
        records, sessions, FakeCustomerCarts(records.calls), FakeAddressBook(records.calls)
    )

    assert await erasure.erase(1) is True

    assert records.calls == ["discard_customer_cart", "delete_all_of", "erase"]
    assert await sessions.customer_id(token.token) is None
    assert await records.credentials("ann@example.com") is None


async def test_verification_tokens_expire() -> None:
    shop = Shop()
    await shop.ann()
    mail = SealedMail.open(FakeSealer(), shop.records.verifications[0])
    shop.records.tokens[token_digest(mail.token)].expires_at = datetime.now(UTC) - timedelta(
        seconds=1
    )

    with pytest.raises(Rejected) as raised:
        await shop.changes.verify_email(mail.token)

    assert _codes(raised) == [UserErrorCode.INVALID_TOKEN]
