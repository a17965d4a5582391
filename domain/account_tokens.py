"""Single-use tokens mailed to a customer: password resets and email verifications.

A token is 256 random bits handed out once, in a mail; storage keeps only its SHA-256
(`token_digest`), so neither a database dump nor a stream can be replayed. On its way
to the mail (outbox, Redis stream) the raw token travels sealed: encrypted with the PII
keys (`Sealer`), together with the address it goes to.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

# Longer than any token we mint (43 characters): anything longer is unknown unhashed.
TOKEN_MAX = 200


class TokenPurpose(StrEnum):
    PASSWORD_RESET = "password_reset"
    EMAIL_VERIFICATION = "email_verification"


class Sealer(Protocol):
    """Symmetric encryption of small texts (the PII cipher)."""

    def encrypt(self, text: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as it is minted: the raw value for the mail, its digest for storage."""

    token: str
    digest: str
    expires_at: datetime

    @classmethod
    def mint(cls, expires_at: datetime) -> IssuedToken:
        token = secrets.token_urlsafe(32)
        return cls(token=token, digest=token_digest(token), expires_at=expires_at)


@dataclass(frozen=True, slots=True)
class SealedMail:
    """What a mail about a token needs, as it travels encrypted through the outbox."""

    to: str
    token: str
    expires_at: datetime

    def seal(self, sealer: Sealer) -> str:
        text = json.dumps(
            {"to": self.to, "token": self.token, "expires_at": self.expires_at.isoformat()}
        )
        return sealer.encrypt(text)

    @classmethod
    def open(cls, sealer: Sealer, sealed: str) -> SealedMail:
        fields = json.loads(sealer.decrypt(sealed))
        return cls(
            to=str(fields["to"]),
            token=str(fields["token"]),
            expires_at=datetime.fromisoformat(fields["expires_at"]),
        )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def usable_token(raw: str) -> str | None:
    """The digest to look a client's token up by, or None for one we never minted."""
    token = raw.strip()
    if not token or len(token) > TOKEN_MAX:
        return None
    return token_digest(token)
