"""Customers, their passwords and access tokens: registration, log in, log out.

Account guessing is made unprofitable: an unknown email and a wrong password give the
same error after the same work (a password hash is always verified), and failures
are counted per email and per client address.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.errors import Rejected, UserError, UserErrorCode

PASSWORD_MIN, PASSWORD_MAX = 8, 256
NAME_MAX = 120
EMAIL_MAX = 320
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    email: str
    display_name: str
    is_staff: bool
    created_at: datetime
    email_verified: bool = False  # a mailed token for the current email came back


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: datetime


class CustomerRepository(Protocol):
    async def create(self, email: str, display_name: str, password_hash: str) -> Customer | None:
        """The new customer, or None when the email is taken (any letter case)."""
        ...

    async def credentials(self, email: str) -> tuple[Customer, str | None] | None: ...

    async def by_ids(self, ids: Sequence[int]) -> dict[int, Customer]: ...


class PasswordHasher(Protocol):
    """CPU-bound and synchronous: callers run it in a thread."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class SessionStore(Protocol):
    async def create(self, customer_id: int) -> AccessToken: ...

    async def customer_id(self, token: str) -> int | None: ...

    async def revoke(self, token: str) -> bool: ...

    async def revoke_all(self, customer_id: int, *, keep: str | None = None) -> int:
        """End every access token of the customer except `keep`: how many ended."""
        ...


class LoginThrottle(Protocol):
    async def blocked(self, email: str, client: str) -> bool: ...

    async def failed(self, email: str, client: str) -> None: ...

    async def succeeded(self, email: str) -> None: ...


def canonical_email(raw: str) -> str:
    """The one spelling of an address: what uniqueness, lookups and throttles compare.

    NFKC first, so a fullwidth address (U+FF01-U+FF5E, what East Asian keyboards type)
    and other compatibility forms become the address they look like. Then the whole address is
    lower-cased, the local part too: RFC 5321 lets a server treat `Bob` and `bob` as two
    mailboxes, but no real provider does, and a store where they are two accounts invites
    takeover confusion (and mail for one reaching the other). `lower()` rather than
    `casefold()`: casefold turns `ß` into `ss`, which IDNA2008 domains keep distinct.
    """
    return unicodedata.normalize("NFKC", raw).strip().lower()


def normalize_email(raw: str, field: str = "email") -> str:
    """The canonical address (see canonical_email), refused when it is not one."""
    email = canonical_email(raw)
    if not email:
        raise Rejected.one(UserErrorCode.BLANK, "email is required", field)
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        raise Rejected.one(UserErrorCode.INVALID, "email is not a valid address", field)
    return email


def check_new_password(password: str) -> list[UserError]:
    if len(password) < PASSWORD_MIN:
        message = f"password must have at least {PASSWORD_MIN} characters"
        return [UserError(UserErrorCode.TOO_SHORT, message, ("password",))]
    if len(password) > PASSWORD_MAX:
        message = f"password must have at most {PASSWORD_MAX} characters"
        return [UserError(UserErrorCode.TOO_LONG, message, ("password",))]
    return []


def check_name(name: str) -> list[UserError]:
    if not name.strip():
        return [UserError(UserErrorCode.BLANK, "name is required", ("name",))]
    if len(name) > NAME_MAX:
        message = f"name must have at most {NAME_MAX} characters"
        return [UserError(UserErrorCode.TOO_LONG, message, ("name",))]
    return []


class Accounts:
    def __init__(
        self,
        customers: CustomerRepository,
        hasher: PasswordHasher,
        sessions: SessionStore,
        throttle: LoginThrottle,
    ) -> None:
        self._customers = customers
        self._hasher = hasher
        self._sessions = sessions
        self._throttle = throttle
        self._decoy_hash: str | None = None

    async def register(self, email: str, password: str, name: str) -> Customer:
        """A new customer. An existing email is refused with EMAIL_TAKEN: that tells a
        caller the address has an account, the price of a clear sign-up form (rate
        limits bound how fast anyone can probe)."""
        errors = [*check_new_password(password), *check_name(name)]
        try:
            email = normalize_email(email)
        except Rejected as rejected:
            errors = rejected.errors + errors
        if errors:
            raise Rejected(errors)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        customer = await self._customers.create(email, name.strip(), password_hash)
        if customer is None:
            raise Rejected.one(
                UserErrorCode.EMAIL_TAKEN, "an account with this email exists", "email"
            )
        return customer

    async def log_in(self, email: str, password: str, client: str) -> AccessToken:
        email = canonical_email(email)  # the throttle and the lookup see one spelling
        if await self._throttle.blocked(email, client):
            raise Rejected.one(UserErrorCode.THROTTLED, "too many failed attempts; try again later")
        found = await self._customers.credentials(email) if len(email) <= EMAIL_MAX else None
        stored_hash = found[1] if found is not None else None
        # Verify even when there is nothing to verify against, so an unknown email
        # takes as long as a wrong password.
        against = stored_hash or await self._decoy()
        valid = await asyncio.to_thread(self._hasher.verify, against, password[: PASSWORD_MAX + 1])
        if found is None or stored_hash is None or not valid:
            await self._throttle.failed(email, client)
            raise Rejected.one(UserErrorCode.INVALID_CREDENTIALS, "email or password is incorrect")
        await self._throttle.succeeded(email)
        return await self._sessions.create(found[0].id)

    async def log_out(self, token: str) -> bool:
        return await self._sessions.revoke(token)

    async def customer_for(self, token: str | None) -> Customer | None:
        if not token:
            return None
        customer_id = await self.session_owner(token)
        return None if customer_id is None else await self.customer(customer_id)

    async def session_owner(self, token: str) -> int | None:
        """Whose live session this token is (a session store read, no database): None for
        an unknown, expired or revoked token."""
        return await self._sessions.customer_id(token)

    async def customer(self, customer_id: int) -> Customer | None:
        return (await self._customers.by_ids([customer_id])).get(customer_id)

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await asyncio.to_thread(self._hasher.hash, "decoy, never matches")
        return self._decoy_hash
