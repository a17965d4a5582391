"""Partners: API clients with a key, a rate-limit tier and, optionally, a manifest of the
only operations they may run."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.persisted_queries import DocumentPolicy, Operation

KEY_PREFIX = "pk_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,119}$")


@dataclass(frozen=True, slots=True)
class Partner:
    id: int
    name: str
    key_prefix: str
    persisted_only: bool
    tier: str
    operations: Mapping[str, Operation]

    @property
    def policy(self) -> DocumentPolicy:
        return DocumentPolicy(persisted_only=self.persisted_only, manifest=self.operations)


@dataclass(frozen=True, slots=True)
class NewPartner:
    name: str
    persisted_only: bool
    tier: str
    operations: Sequence[Operation]


def new_api_key() -> str:
    """256 random bits: guessing one is hopeless, so a plain SHA-256 of it is a safe
    thing to store (no slow hash needed, and lookups stay one dictionary probe)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 6]


class PartnerRepository(Protocol):
    async def create(self, partner: NewPartner, key_hash: str, key_prefix: str) -> Partner:
        """Raises `PartnerExists` when the name is taken."""
        ...

    async def replace_operations(self, name: str, operations: Sequence[Operation]) -> bool: ...

    async def revoke(self, name: str) -> bool: ...

    async def active(self) -> list[tuple[str, Partner]]:
        """Partners not revoked, each with the hash of its key."""
        ...


class PartnerExists(Exception):
    pass


def check_new_partner(partner: NewPartner, tiers: Sequence[str]) -> list[str]:
    problems = []
    if not NAME_PATTERN.match(partner.name):
        problems.append("name: 1-120 letters, digits, spaces, dots, dashes or underscores")
    if partner.tier not in tiers:
        problems.append(f"tier: one of {', '.join(sorted(tiers))}")
    if partner.persisted_only and not partner.operations:
        problems.append("a persisted-only partner needs a manifest (--manifest FILE)")
    return problems
