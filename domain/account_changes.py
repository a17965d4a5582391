"""What a customer changes about their account: profile, email, password, a forgotten
password, the proof that an address is theirs.

- Changing the email or the password needs the current password, checked like a login
  (same throttle, same work for a wrong password), so this is no password oracle.
- A new email replaces the old one only once a token mailed to it comes back
  (`verify_email`); until then login and `me.email` keep the old address. An address
  another account holds is refused when asked for (EMAIL_TAKEN, like sign-up, which
  already tells) and again at verification, where the unique index decides a race.
- A password change ends every other access token; a reset ends every one.
- `recover` does the same work whatever the address: it never asks whether an account
  exists. It counts the request, mints a token and queues it sealed in the outbox; the
  mail worker looks the address up, stores the token's digest for an account and mails
  it, or drops it. Answer and timing cannot tell the two apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from domain.account_tokens import IssuedToken, SealedMail, Sealer, usable_token
from domain.customers import (
    PASSWORD_MAX,
    AccessToken,
    Accounts,
    Customer,
    LoginThrottle,
    PasswordHasher,
    SessionStore,
    check_name,
    check_new_password,
    normalize_email,
)
from domain.errors import Rejected, UserError, UserErrorCode


class VerificationFailure(StrEnum):
    INVALID_TOKEN = "invalid_token"  # unknown, used or expired
    EMAIL_TAKEN = "email_taken"  # another account took the address meanwhile


class AccountRecords(Protocol):
    """The customer records these changes write (persistence/accounts/customers.py)."""

    async def credentials(self, email: str) -> tuple[Customer, str | None] | None: ...

    async def by_ids(self, ids: list[int]) -> dict[int, Customer]: ...

    async def update_profile(
        self,
        customer_id: int,
        *,
        display_name: str | None,
        password_hash: str | None,
        verification: tuple[str, IssuedToken, str] | None,
    ) -> Customer | None:
        """One transaction: the new name and password hash (which ends open reset
        tokens), and a verification of (address, token, sealed mail) replacing any open
        one. None: no such customer."""
        ...

    async def queue_password_reset(self, sealed: str) -> None:
        """Queue a PasswordResetRequested event (the mail worker acts on it)."""
        ...

    async def reset_password(self, token_digest: str, password_hash: str) -> Customer | None:
        """Redeem an open reset token and set the password (one transaction, the token
        used at most once whatever runs concurrently); None for an unusable token."""
        ...

    async def verify_email(self, token_digest: str) -> Customer | VerificationFailure:
        """Redeem an open verification token: its address becomes the customer's,
        verified."""
        ...


@dataclass(frozen=True, slots=True)
class TokenLifetimes:
    password_reset_seconds: int
    email_verification_seconds: int


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    """customerUpdate's input: None leaves a field as it is."""

    name: str | None = None
    email: str | None = None
    password: str | None = None
    current_password: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class AccountChanges:
    def __init__(
        self,
        accounts: Accounts,
        records: AccountRecords,
        hasher: PasswordHasher,
        sessions: SessionStore,
        login_throttle: LoginThrottle,
        recovery_throttle: LoginThrottle,
        sealer: Sealer,
        lifetimes: TokenLifetimes,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._accounts = accounts
        self._records = records
        self._hasher = hasher
        self._sessions = sessions
        self._login_throttle = login_throttle
        self._recovery_throttle = recovery_throttle
        self._sealer = sealer
        self._lifetimes = lifetimes
        self._clock = clock
        self._decoy_hash: str | None = None

    async def register(self, email: str, password: str, name: str) -> Customer:
        """Sign up, and mail a token that verifies the address."""
        customer = await self._accounts.register(email, password, name)
        verified = await self._records.update_profile(
            customer.id,
            display_name=None,
            password_hash=None,
            verification=self._verification(customer.email),
        )
        return verified or customer

    async def update(
        self, customer: Customer, token: str, client: str, changes: ProfileChanges
    ) -> Customer:
        """customerUpdate. The same address again, while unverified, mails a new token
        (the way to ask for a lost verification mail); it needs no password."""
        errors: list[UserError] = []
        name = None if changes.name is None else changes.name.strip()
        if changes.name is not None:
            errors += check_name(changes.name)
        email = None
        if changes.email is not None:
            try:
                email = normalize_email(changes.email)
            except Rejected as rejected:
                errors += rejected.errors
        if changes.password is not None:
            errors += check_new_password(changes.password)
        if errors:
            raise Rejected(errors)
        new_email = email is not None and email != customer.email
        if new_email or changes.password is not None:
            await self.confirm_password(customer, changes.current_password, client)
        if new_email and email is not None:
            holder = await self._records.credentials(email)
            if holder is not None and holder[0].id != customer.id:
                raise Rejected.one(
                    UserErrorCode.EMAIL_TAKEN, "an account with this email exists", "email"
                )
        password_hash = None
        if changes.password is not None:
            password_hash = await asyncio.to_thread(self._hasher.hash, changes.password)
        resend = email == customer.email and not customer.email_verified
        updated = await self._records.update_profile(
            customer.id,
            display_name=name,
            password_hash=password_hash,
            verification=self._verification(email) if email and (new_email or resend) else None,
        )
        if updated is None:  # erased meanwhile
            raise Rejected.one(UserErrorCode.INVALID_ACCESS_TOKEN, "the account is gone")
        if password_hash is not None:
            await self._sessions.revoke_all(customer.id, keep=token)
        return updated

    async def confirm_password(self, customer: Customer, password: str | None, client: str) -> None:
        """The customer's current password, checked like a login: throttled per email and
        client, a hash verified whether or not the account has a password."""
        if not password:
            raise Rejected.one(
                UserErrorCode.BLANK,
                "currentPassword is required for this change",
                "currentPassword",
            )
        if await self._login_throttle.blocked(customer.email, client):
            raise Rejected.one(UserErrorCode.THROTTLED, "too many failed attempts; try again later")
        found = await self._records.credentials(customer.email)
        stored = found[1] if found is not None and found[0].id == customer.id else None
        against = stored or await self._decoy()
        valid = await asyncio.to_thread(self._hasher.verify, against, password[: PASSWORD_MAX + 1])
        if stored is None or not valid:
            await self._login_throttle.failed(customer.email, client)
            raise Rejected.one(
                UserErrorCode.INVALID_CREDENTIALS,
                "the current password is incorrect",
                "currentPassword",
            )
        await self._login_throttle.succeeded(customer.email)

    async def recover(self, email: str, client: str) -> None:
        """customerRecover: the same answer and the same work for any well-formed address."""
        address = normalize_email(email)  # a malformed one is refused: it tells nothing
        if await self._recovery_throttle.blocked(address, client):
            raise Rejected.one(UserErrorCode.THROTTLED, "too many requests; try again later")
        await self._recovery_throttle.failed(address, client)  # every request counts
        expires_at = self._clock() + timedelta(seconds=self._lifetimes.password_reset_seconds)
        token = IssuedToken.mint(expires_at)
        sealed = SealedMail(to=address, token=token.token, expires_at=expires_at)
        await self._records.queue_password_reset(sealed.seal(self._sealer))

    async def reset(self, token: str, password: str) -> tuple[Customer, AccessToken]:
        """customerReset: a new password from a mailed token; every access token ends and
        a new one is returned."""
        if problems := check_new_password(password):
            raise Rejected(problems)
        digest = usable_token(token)
        if digest is None:
            raise _invalid_token()
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        customer = await self._records.reset_password(digest, password_hash)
        if customer is None:
            raise _invalid_token()
        await self._sessions.revoke_all(customer.id)
        return customer, await self._sessions.create(customer.id)

    async def verify_email(self, token: str) -> Customer:
        """customerEmailVerify."""
        digest = usable_token(token)
        if digest is None:
            raise _invalid_token()
        outcome = await self._records.verify_email(digest)
        if outcome is VerificationFailure.EMAIL_TAKEN:
            raise Rejected.one(
                UserErrorCode.EMAIL_TAKEN, "another account has this email now", "token"
            )
        if isinstance(outcome, VerificationFailure):
            raise _invalid_token()
        return outcome

    def _verification(self, email: str) -> tuple[str, IssuedToken, str]:
        expires_at = self._clock() + timedelta(seconds=self._lifetimes.email_verification_seconds)
        token = IssuedToken.mint(expires_at)
        sealed = SealedMail(to=email, token=token.token, expires_at=expires_at)
        return email, token, sealed.seal(self._sealer)

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await asyncio.to_thread(self._hasher.hash, "decoy, never matches")
        return self._decoy_hash


def _invalid_token() -> Rejected:
    return Rejected.one(
        UserErrorCode.INVALID_TOKEN, "the token is unknown, used or expired", "token"
    )
