"""Partners in SQL, and the in-process directory every request authenticates against."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.partners import NewPartner, Partner, PartnerExists, hash_api_key
from domain.persisted_queries import Operation
from persistence.db import Database
from persistence.tables import partner_operations, partners

log = logging.getLogger(__name__)


class SqlPartnerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, partner: NewPartner, key_hash: str, key_prefix: str) -> Partner:
        try:
            async with self._db.writer.begin() as connection:
                partner_id = (
                    await connection.execute(
                        insert(partners)
                        .values(
                            name=partner.name,
                            key_hash=key_hash,
                            key_prefix=key_prefix,
                            persisted_only=partner.persisted_only,
                            tier=partner.tier,
                        )
                        .returning(partners.c.id)
                    )
                ).scalar_one()
                if partner.operations:
                    await connection.execute(
                        insert(partner_operations),
                        [_operation_row(partner_id, o) for o in partner.operations],
                    )
        except IntegrityError:  # the unique name (a key collision is 2^-256)
            raise PartnerExists(partner.name) from None
        return Partner(
            id=partner_id,
            name=partner.name,
            key_prefix=key_prefix,
            persisted_only=partner.persisted_only,
            tier=partner.tier,
            operations={o.id: o for o in partner.operations},
        )

    async def replace_operations(self, name: str, operations: Sequence[Operation]) -> bool:
        """The partner's manifest becomes exactly `operations` (one transaction)."""
        async with self._db.writer.begin() as connection:
            partner_id = (
                await connection.execute(
                    select(partners.c.id).where(
                        partners.c.name == name, partners.c.revoked_at.is_(None)
                    )
                )
            ).scalar_one_or_none()
            if partner_id is None:
                return False
            await connection.execute(
                delete(partner_operations).where(partner_operations.c.partner_id == partner_id)
            )
            if operations:
                await connection.execute(
                    insert(partner_operations),
                    [_operation_row(partner_id, o) for o in operations],
                )
        return True

    async def revoke(self, name: str) -> bool:
        async with self._db.writer.begin() as connection:
            result = await connection.execute(
                update(partners)
                .where(partners.c.name == name, partners.c.revoked_at.is_(None))
                .values(revoked_at=func.now())
            )
        return result.rowcount == 1

    async def active(self) -> list[tuple[str, Partner]]:
        """Every partner not revoked, with its key hash and operations (two statements)."""
        # The primary: a key issued or revoked counts from the next refresh.
        async with self._db.primary_reader.connect() as connection:
            rows = (
                await connection.execute(select(partners).where(partners.c.revoked_at.is_(None)))
            ).mappings()
            found = {row["id"]: row for row in rows}
            operations: dict[int, dict[str, Operation]] = {pid: {} for pid in found}
            if found:
                for op in await connection.execute(
                    select(partner_operations).where(
                        partner_operations.c.partner_id.in_(list(found))
                    )
                ):
                    operations[op.partner_id][op.operation_id] = Operation(
                        id=op.operation_id, name=op.name, body=op.body
                    )
        return [
            (
                row["key_hash"],
                Partner(
                    id=pid,
                    name=row["name"],
                    key_prefix=row["key_prefix"],
                    persisted_only=row["persisted_only"],
                    tier=row["tier"],
                    operations=operations[pid],
                ),
            )
            for pid, row in found.items()
        ]


def _operation_row(partner_id: int, operation: Operation) -> dict[str, object]:
    return {
        "partner_id": partner_id,
        "operation_id": operation.id,
        "name": operation.name,
        "body": operation.body,
    }


class PartnerDirectory:
    """Every active partner, held in memory: authenticating a key is one dict lookup,
    with no I/O on the request path. Reloaded every `refresh_seconds` (a revoked key
    stops working within that time on every server) and, at most once a second, when
    an unknown key arrives (so a partner created a moment ago works at once)."""

    def __init__(self, repository: SqlPartnerRepository, *, refresh_seconds: float) -> None:
        self._repository = repository
        self._refresh_seconds = refresh_seconds
        self._by_key_hash: dict[str, Partner] = {}
        self._loaded_at = -1e9
        self._lock = asyncio.Lock()

    async def authenticate(self, api_key: str) -> Partner | None:
        key_hash = hash_api_key(api_key)
        now = time.monotonic()
        if now - self._loaded_at > self._refresh_seconds:
            await self.reload()
        partner = self._by_key_hash.get(key_hash)
        if partner is None and now - self._loaded_at > 1.0:
            await self.reload()
            partner = self._by_key_hash.get(key_hash)
        return partner

    async def reload(self) -> None:
        async with self._lock:
            started = time.monotonic()
            if started - self._loaded_at < 0.05:  # another request just did
                return
            try:
                active = await self._repository.active()
            except Exception:
                # Keep serving the partners we know; the next request retries.
                log.exception("could not reload partners; keeping %d", len(self._by_key_hash))
                self._loaded_at = started
                return
            self._by_key_hash = dict(active)
            self._loaded_at = started

    def partners(self) -> Sequence[Partner]:
        return list(self._by_key_hash.values())
