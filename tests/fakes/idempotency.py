"""An in-memory `IdempotencyStore` with the SQL store's rules: a key is new, replayed
(done), refused (another request's fingerprint), busy (locked) or resumed (its lock lapsed);
expired keys start afresh. `FakeOrderStore.place` links the placed order to the claim, as
the placing transaction does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.checkout import Claim, ClaimKind

if TYPE_CHECKING:
    from domain.checkout import IdempotencyStore


@dataclass
class KeyRecord:
    id: int
    scope: str
    key: str
    fingerprint: str
    locked_until: datetime
    expires_at: datetime
    order_id: int | None = None
    result: dict[str, Any] | None = None


class FakeIdempotencyStore:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], KeyRecord] = {}
        self._next_id = 1

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
        expires_at = now + timedelta(seconds=ttl_seconds)
        record = self.records.get((scope, key))
        if record is None:
            record = KeyRecord(self._next_id, scope, key, fingerprint, locked_until, expires_at)
            self._next_id += 1
            self.records[(scope, key)] = record
            return Claim(ClaimKind.NEW, record.id)
        if record.expires_at <= now:  # an old key: start afresh
            fresh = KeyRecord(record.id, scope, key, fingerprint, locked_until, expires_at)
            self.records[(scope, key)] = fresh
            return Claim(ClaimKind.NEW, record.id)
        if record.fingerprint != fingerprint:
            return Claim(ClaimKind.MISMATCH)
        if record.result is not None:
            return Claim(ClaimKind.DONE, record.id, record.order_id, record.result)
        if record.locked_until <= now:  # the holder died: take over
            record.locked_until = locked_until
            return Claim(ClaimKind.RESUME, record.id, record.order_id)
        return Claim(ClaimKind.BUSY, record.id, record.order_id)

    async def finish(self, claim_id: int, result: dict[str, Any]) -> None:
        record = self._by_id(claim_id)
        if record is not None:
            record.result = result

    async def abandon(self, claim_id: int) -> None:
        record = self._by_id(claim_id)
        if record is not None:
            del self.records[(record.scope, record.key)]

    async def release(self, claim_id: int, now: datetime) -> None:
        record = self._by_id(claim_id)
        if record is None or record.result is not None:
            return
        if record.order_id is None:
            del self.records[(record.scope, record.key)]
        else:
            record.locked_until = now

    async def delete_expired(self, now: datetime) -> int:
        expired = [k for k, record in self.records.items() if record.expires_at < now]
        for k in expired:
            del self.records[k]
        return len(expired)

    def link(self, claim_id: int, order_id: int) -> None:
        """What the placing transaction does to the claim row."""
        record = self._by_id(claim_id)
        if record is not None:
            record.order_id = order_id

    def _by_id(self, claim_id: int) -> KeyRecord | None:
        return next((r for r in self.records.values() if r.id == claim_id), None)


if TYPE_CHECKING:
    _conforms: IdempotencyStore = FakeIdempotencyStore()
