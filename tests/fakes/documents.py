"""In-memory `DocumentStore` (automatic persisted queries by hash) and
`PartnerRepository` (unique names, revocation, keys stored only as hashes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from domain.partners import NewPartner, Partner, PartnerExists
from domain.persisted_queries import Operation

if TYPE_CHECKING:
    from domain.partners import PartnerRepository
    from domain.persisted_queries import DocumentStore


class FakeDocumentStore:
    def __init__(self) -> None:
        self.documents: dict[str, str] = {}  # sha256 hex -> body

    async def get(self, sha256_hash: str) -> str | None:
        return self.documents.get(sha256_hash)

    async def put(self, sha256_hash: str, body: str) -> None:
        self.documents[sha256_hash] = body


class FakePartnerRepository:
    def __init__(self) -> None:
        self.partners: dict[str, tuple[str, Partner]] = {}  # name -> (key hash, partner)
        self.revoked: set[str] = set()

    async def create(self, partner: NewPartner, key_hash: str, key_prefix: str) -> Partner:
        if partner.name in self.partners:
            raise PartnerExists(partner.name)
        created = Partner(
            id=len(self.partners) + 1,
            name=partner.name,
            key_prefix=key_prefix,
            persisted_only=partner.persisted_only,
            tier=partner.tier,
            operations={o.id: o for o in partner.operations},
        )
        self.partners[partner.name] = (key_hash, created)
        return created

    async def replace_operations(self, name: str, operations: Sequence[Operation]) -> bool:
        if name not in self.partners or name in self.revoked:
            return False
        key_hash, partner = self.partners[name]
        self.partners[name] = (key_hash, replace(partner, operations={o.id: o for o in operations}))
        return True

    async def revoke(self, name: str) -> bool:
        if name not in self.partners or name in self.revoked:
            return False
        self.revoked.add(name)
        return True

    async def active(self) -> list[tuple[str, Partner]]:
        return [row for name, row in self.partners.items() if name not in self.revoked]


if TYPE_CHECKING:
    _documents: DocumentStore = FakeDocumentStore()
    _partners: PartnerRepository = FakePartnerRepository()
