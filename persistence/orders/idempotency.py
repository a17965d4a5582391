"""Idempotency keys in SQL: a checkout's claim on its key, its result, its release.

A key is unique on (scope, key); the row holds the request's fingerprint, a lock until
which its holder is presumed alive, and the stored result once the checkout finished.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.checkout import Claim, ClaimKind
from persistence.db import Database, aware
from persistence.tables import idempotency_keys


class SqlIdempotencyStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert: Any = postgresql.insert if db.is_postgres else sqlite.insert

    async def claim(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        now: datetime,
        lock_seconds: float,
        ttl_seconds: int,
    ) -> Claim:
        locked_until = now + timedelta(seconds=lock_seconds)
        fresh = {
            "fingerprint": fingerprint,
            "locked_until": locked_until,
            "expires_at": now + timedelta(seconds=ttl_seconds),
        }
        async with self._db.writer.begin() as connection:
            new_id = (
                await connection.execute(
                    self._insert(idempotency_keys)
                    .values(scope=scope, key=key, **fresh)
                    .on_conflict_do_nothing(
                        index_elements=[idempotency_keys.c.scope, idempotency_keys.c.key]
                    )
                    .returning(idempotency_keys.c.id)
                )
            ).scalar()
            if new_id is not None:
                return Claim(ClaimKind.NEW, int(new_id))
            row = (
                (
                    await connection.execute(
                        select(idempotency_keys)
                        .where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
                        .with_for_update()
                    )
                )
                .mappings()
                .one_or_none()
            )
            if row is None:
                # Its holder forgot the key between our INSERT and this read (its request
                # was refused, or failed before placing): busy, so the caller claims again
                # after its short wait, and that INSERT takes the key.
                return Claim(ClaimKind.BUSY)
            claim_id = int(row["id"])
            if aware(row["expires_at"]) <= now:  # an old key: start afresh
                await connection.execute(
                    update(idempotency_keys)
                    .where(idempotency_keys.c.id == claim_id)
                    .values(result=None, order_id=None, **fresh)
                )
                return Claim(ClaimKind.NEW, claim_id)
            if row["fingerprint"] != fingerprint:
                return Claim(ClaimKind.MISMATCH)
            if row["result"] is not None:
                return Claim(ClaimKind.DONE, claim_id, row["order_id"], row["result"])
            if aware(row["locked_until"]) <= now:  # the holder died: take over
                await connection.execute(
                    update(idempotency_keys)
                    .where(idempotency_keys.c.id == claim_id)
                    .values(locked_until=locked_until)
                )
                return Claim(ClaimKind.RESUME, claim_id, row["order_id"])
            return Claim(ClaimKind.BUSY, claim_id, row["order_id"])

    async def finish(self, claim_id: int, result: dict[str, Any]) -> None:
        async with self._db.writer.begin() as connection:
            await connection.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.id == claim_id)
                .values(result=result)
            )

    async def abandon(self, claim_id: int) -> None:
        async with self._db.writer.begin() as connection:
            await connection.execute(
                delete(idempotency_keys).where(idempotency_keys.c.id == claim_id)
            )

    async def release(self, claim_id: int, now: datetime) -> None:
        # The database decides, not the caller: a placing transaction cut off mid-commit
        # may or may not have linked its order. A concurrent one still holds the row's
        # lock, so the DELETE waits for it and then sees the link if it committed.
        async with self._db.writer.begin() as connection:
            forgotten = await connection.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.id == claim_id,
                    idempotency_keys.c.order_id.is_(None),
                    idempotency_keys.c.result.is_(None),
                )
            )
            if forgotten.rowcount == 0:
                await connection.execute(
                    update(idempotency_keys)
                    .where(idempotency_keys.c.id == claim_id, idempotency_keys.c.result.is_(None))
                    .values(locked_until=now)
                )

    async def delete_expired(self, now: datetime) -> int:
        async with self._db.writer.begin() as connection:
            result = await connection.execute(
                delete(idempotency_keys).where(idempotency_keys.c.expires_at < now)
            )
            return int(result.rowcount)
