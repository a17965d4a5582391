"""Account mails from events: password reset codes and email verification codes.

The `account-mail` consumer group reads PasswordResetRequested and
EmailVerificationRequested, opens their sealed contents and mails them through the
notifications path (one per token: the notification's key holds the token's digest, so
a redelivered event sends nothing twice). A reset request for an address without an
account ends here, silently: that is what keeps customerRecover from telling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.account_tokens import IssuedToken, SealedMail, Sealer, token_digest
from domain.customers import Customer
from domain.events import EmailVerificationRequested, Event, PasswordResetRequested, Topic
from domain.notifications import Mailer, Message, NotificationKind, NotificationStore, deliver


class AccountMailRecords(Protocol):
    async def grant_password_reset(self, email: str, token: IssuedToken) -> Customer | None:
        """Store the token's digest for the account with this email (idempotent): the
        customer, or None when no account has the address."""
        ...

    async def token_is_open(self, token_digest: str) -> bool:
        """Whether the token is stored, unused and unexpired."""
        ...


def account_mail_key(customer_id: int, digest: str) -> str:
    """A notification's key for a token mail: erasure drops a customer's by this prefix."""
    return f"customer:{customer_id}:{digest}"


def password_reset_mail(to: str, token: str, valid_until: str) -> Message:
    body = "\n".join(
        [
            "Someone asked to reset the password of your account.",
            "",
            f"Your reset code: {token}",
            "",
            f"It works once, until {valid_until} UTC. If it was not you, ignore this mail:",
            "your password stays as it is.",
        ]
    )
    return Message(to=to, subject="Reset your password", body=body)


def email_verification_mail(to: str, token: str, valid_until: str) -> Message:
    body = "\n".join(
        [
            "Please confirm that this address is yours.",
            "",
            f"Your verification code: {token}",
            "",
            f"It works once, until {valid_until} UTC. If you did not ask for it, ignore",
            "this mail.",
        ]
    )
    return Message(to=to, subject="Confirm your email address", body=body)


@dataclass
class AccountMails:
    records: AccountMailRecords
    store: NotificationStore
    mailer: Mailer | None
    sealer: Sealer
    name: str = "account-mail"
    topics: tuple[str, ...] = (
        Topic.PASSWORD_RESET_REQUESTED,
        Topic.EMAIL_VERIFICATION_REQUESTED,
    )

    async def handle(self, events: Sequence[Event]) -> None:
        for event in events:
            payload = event.parsed()
            if isinstance(payload, PasswordResetRequested):
                await self._reset(payload)
            elif isinstance(payload, EmailVerificationRequested):
                await self._verification(payload)

    async def _reset(self, event: PasswordResetRequested) -> None:
        mail = SealedMail.open(self.sealer, event.sealed)
        token = IssuedToken(mail.token, token_digest(mail.token), mail.expires_at)
        customer = await self.records.grant_password_reset(mail.to, token)
        if customer is None:
            return  # no account: nothing is sent, and the caller was told the same
        message = password_reset_mail(customer.email, mail.token, _minute(mail))
        key = account_mail_key(customer.id, token.digest)
        await deliver(self.store, self.mailer, NotificationKind.PASSWORD_RESET, key, message)

    async def _verification(self, event: EmailVerificationRequested) -> None:
        mail = SealedMail.open(self.sealer, event.sealed)
        digest = token_digest(mail.token)
        if not await self.records.token_is_open(digest):
            return  # replaced by a newer one, or the customer was erased meanwhile
        message = email_verification_mail(mail.to, mail.token, _minute(mail))
        key = account_mail_key(event.customer, digest)
        await deliver(self.store, self.mailer, NotificationKind.EMAIL_VERIFICATION, key, message)


def _minute(mail: SealedMail) -> str:
    return mail.expires_at.strftime("%Y-%m-%d %H:%M")
