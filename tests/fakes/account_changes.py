"""In-memory ports of account changes and erasure: records that log every call, a
reversible sealer, customer carts and an address book."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from domain.account_changes import VerificationFailure
from domain.account_tokens import IssuedToken, TokenPurpose
from domain.customers import Customer
from tests.fakes.accounts import FakeCustomerRepository

if TYPE_CHECKING:
    from domain.account_changes import AccountRecords
    from domain.account_mail import AccountMailRecords
    from domain.account_tokens import Sealer
    from domain.erasure import AddressBook, CustomerCarts, ErasableRecords


class FakeSealer:
    """Not encryption (tests read it), but never the clear text either."""

    def encrypt(self, text: str) -> str:
        return "sealed:" + text[::-1]

    def decrypt(self, token: str) -> str:
        return token.removeprefix("sealed:")[::-1]


@dataclasses.dataclass
class _Token:
    customer_id: int
    purpose: TokenPurpose
    email: str | None
    expires_at: datetime
    used: bool = False


class FakeAccountRecords(FakeCustomerRepository):
    """Customers plus their account tokens; `calls` names every method called, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.tokens: dict[str, _Token] = {}  # by digest
        self.queued: list[str] = []  # sealed PasswordResetRequested payloads
        self.verifications: list[str] = []  # sealed EmailVerificationRequested payloads

    async def credentials(self, email: str) -> tuple[Customer, str | None] | None:
        self.calls.append("credentials")
        return await super().credentials(email)

    def _replace(self, customer_id: int, **changes: object) -> Customer | None:
        for email, (customer, password_hash) in list(self.rows.items()):
            if customer.id == customer_id:
                hashed = changes.pop("password_hash", password_hash)
                updated = dataclasses.replace(customer, **changes)  # type: ignore[arg-type]
                del self.rows[email]
                self.rows[updated.email.lower()] = (updated, hashed)  # type: ignore[assignment]
                return updated
        return None

    async def update_profile(
        self,
        customer_id: int,
        *,
        display_name: str | None,
        password_hash: str | None,
        verification: tuple[str, IssuedToken, str] | None,
    ) -> Customer | None:
        self.calls.append("update_profile")
        changes: dict[str, object] = {}
        if display_name is not None:
            changes["display_name"] = display_name
        if password_hash is not None:
            changes["password_hash"] = password_hash
        if verification is not None:
            email, token, sealed = verification
            for open_token in self.tokens.values():
                if open_token.customer_id == customer_id:
                    open_token.used = True
            purpose = TokenPurpose.EMAIL_VERIFICATION
            self.tokens[token.digest] = _Token(customer_id, purpose, email, token.expires_at)
            self.verifications.append(sealed)
        return self._replace(customer_id, **changes)

    async def queue_password_reset(self, sealed: str) -> None:
        self.calls.append("queue_password_reset")
        self.queued.append(sealed)

    async def grant_password_reset(self, email: str, token: IssuedToken) -> Customer | None:
        found = self.rows.get(email.lower())
        if found is None:
            return None
        purpose = TokenPurpose.PASSWORD_RESET
        self.tokens[token.digest] = _Token(found[0].id, purpose, None, token.expires_at)
        return found[0]

    async def token_is_open(self, token_digest: str) -> bool:
        token = self.tokens.get(token_digest)
        return token is not None and not token.used and token.expires_at > datetime.now(UTC)

    def _redeem(self, digest: str, purpose: TokenPurpose) -> _Token | None:
        token = self.tokens.get(digest)
        if token is None or token.purpose is not purpose or token.used:
            return None
        if token.expires_at <= datetime.now(UTC):
            return None
        token.used = True
        return token

    async def reset_password(self, token_digest: str, password_hash: str) -> Customer | None:
        self.calls.append("reset_password")
        token = self._redeem(token_digest, TokenPurpose.PASSWORD_RESET)
        if token is None:
            return None
        return self._replace(token.customer_id, password_hash=password_hash)

    async def verify_email(self, token_digest: str) -> Customer | VerificationFailure:
        token = self._redeem(token_digest, TokenPurpose.EMAIL_VERIFICATION)
        if token is None or token.email is None:
            return VerificationFailure.INVALID_TOKEN
        holder = self.rows.get(token.email.lower())
        if holder is not None and holder[0].id != token.customer_id:
            return VerificationFailure.EMAIL_TAKEN
        updated = self._replace(token.customer_id, email=token.email, email_verified=True)
        return updated or VerificationFailure.INVALID_TOKEN

    async def erase(self, customer_id: int) -> bool:
        self.calls.append("erase")
        erased = self._replace(
            customer_id, email=f"erased-{customer_id}@erased.invalid", password_hash=None
        )
        return erased is not None


class FakeCustomerCarts:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def discard_customer_cart(self, customer_id: int) -> None:
        self.calls.append("discard_customer_cart")


class FakeAddressBook:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def delete_all_of(self, customer_id: int) -> int:
        self.calls.append("delete_all_of")
        return 0


if TYPE_CHECKING:
    _sealer: Sealer = FakeSealer()
    _records: AccountRecords = FakeAccountRecords()
    _mail_records: AccountMailRecords = FakeAccountRecords()
    _erasable: ErasableRecords = FakeAccountRecords()
    _carts: CustomerCarts = FakeCustomerCarts([])
    _addresses: AddressBook = FakeAddressBook([])
