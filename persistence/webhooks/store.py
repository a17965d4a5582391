"""Webhooks and their deliveries in SQL: the fan-out's idempotent insert, the sender's
claim (FOR UPDATE SKIP LOCKED: concurrent workers take different rows) and record, the
staff's log, and the operator's commands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.pagination import Page, PageRequest, encode_cursor
from domain.webhook_delivery import AttemptResult, DeliveryStatus, DueDelivery, WebhookDelivery
from domain.webhook_log import DELIVERIES_ORDERING, DeliveryFilter
from domain.webhooks import (
    MAX_WEBHOOKS_PER_PARTNER,
    OutgoingEvent,
    PartnerMissing,
    TooManyWebhooks,
    Webhook,
)
from persistence.cursor_keys import cursor_id
from persistence.db import Database, aware
from persistence.pii import PiiCipher
from persistence.tables import partner_webhooks as hooks
from persistence.tables import partners
from persistence.tables import webhook_deliveries as deliveries

# Rows read per claim for each slot: the surplus lets one claim skip past a webhook
# that already has its share in flight.
_CLAIM_SURPLUS = 4
_DELETE_BATCH = 5_000


def _now() -> datetime:
    return datetime.now(UTC)


class SqlWebhookStore:
    def __init__(self, db: Database, cipher: PiiCipher) -> None:
        self._db = db
        self._cipher = cipher
        self._insert: Any = postgresql.insert if db.is_postgres else sqlite.insert

    # -- the operator's commands ---------------------------------------------------------

    async def create(
        self, partner_name: str, url: str, events: Sequence[str], secret: str
    ) -> Webhook:
        async with self._db.writer.begin() as connection:
            partner_id = (
                await connection.execute(
                    select(partners.c.id)
                    .where(partners.c.name == partner_name, partners.c.revoked_at.is_(None))
                    .with_for_update()  # two creates for one partner count one at a time
                )
            ).scalar_one_or_none()
            if partner_id is None:
                raise PartnerMissing(partner_name)
            enabled = (
                await connection.execute(
                    select(func.count()).where(
                        hooks.c.partner_id == partner_id, hooks.c.disabled_at.is_(None)
                    )
                )
            ).scalar_one()
            if enabled >= MAX_WEBHOOKS_PER_PARTNER:
                raise TooManyWebhooks(partner_name)
            webhook_id = (
                await connection.execute(
                    insert(hooks)
                    .values(
                        partner_id=partner_id,
                        url=url,
                        events=list(events),
                        secret_encrypted=self._cipher.encrypt(secret),
                    )
                    .returning(hooks.c.id)
                )
            ).scalar_one()
        found = await self.webhooks(webhook_id=webhook_id)
        return found[0]

    async def webhooks(
        self, partner_name: str | None = None, webhook_id: int | None = None
    ) -> list[Webhook]:
        statement = (
            select(hooks, partners.c.name.label("partner_name"))
            .join(partners, partners.c.id == hooks.c.partner_id)
            .order_by(hooks.c.id)
        )
        if partner_name is not None:
            statement = statement.where(partners.c.name == partner_name)
        if webhook_id is not None:
            statement = statement.where(hooks.c.id == webhook_id)
        async with self._db.primary_reader.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [
            Webhook(
                id=row["id"],
                partner_id=row["partner_id"],
                partner_name=row["partner_name"],
                url=row["url"],
                events=tuple(row["events"]),
                created_at=aware(row["created_at"]),
                failing_since=_aware_or_none(row["failing_since"]),
                disabled_at=_aware_or_none(row["disabled_at"]),
                disabled_reason=row["disabled_reason"],
            )
            for row in rows
        ]

    async def disable(self, webhook_id: int, reason: str) -> bool:
        async with self._db.writer.begin() as connection:
            result = await connection.execute(
                update(hooks)
                .where(hooks.c.id == webhook_id, hooks.c.disabled_at.is_(None))
                .values(disabled_at=_now(), disabled_reason=reason[:200])
            )
        return bool(result.rowcount)

    async def enable(self, webhook_id: int) -> bool:
        async with self._db.writer.begin() as connection:
            result = await connection.execute(
                update(hooks)
                .where(hooks.c.id == webhook_id, hooks.c.disabled_at.is_not(None))
                .values(disabled_at=None, disabled_reason=None, failing_since=None)
            )
        return bool(result.rowcount)

    async def redeliver(
        self,
        window_seconds: float,
        *,
        delivery_ids: Sequence[int] = (),
        webhook_id: int | None = None,
    ) -> int:
        """Send again (same event id and body) the given deliveries, whatever their
        status, or every failed delivery of a webhook; a fresh retry window each."""
        now = _now()
        condition = (
            deliveries.c.id.in_(list(delivery_ids))
            if delivery_ids
            else and_(
                deliveries.c.webhook_id == webhook_id,
                deliveries.c.status == DeliveryStatus.FAILED.value,
            )
        )
        async with self._db.writer.begin() as connection:
            result = await connection.execute(
                update(deliveries)
                .where(condition)
                .values(
                    status=DeliveryStatus.PENDING.value,
                    next_attempt_at=now,
                    expires_at=now + timedelta(seconds=window_seconds),
                )
            )
        return int(result.rowcount or 0)

    async def delete_finished(self, older_than: timedelta) -> int:
        """Forget succeeded and failed deliveries made over `older_than` ago, in batches
        (the housekeeping job: the log would grow without end otherwise)."""
        cutoff = _now() - older_than
        deleted = 0
        while True:
            batch = (
                select(deliveries.c.id)
                .where(
                    deliveries.c.status != DeliveryStatus.PENDING.value,
                    deliveries.c.created_at < cutoff,
                )
                .limit(_DELETE_BATCH)
            )
            async with self._db.writer.begin() as connection:
                result = await connection.execute(
                    delete(deliveries).where(deliveries.c.id.in_(batch.scalar_subquery()))
                )
            count = int(result.rowcount or 0)
            deleted += count
            if count < _DELETE_BATCH:
                return deleted

    # -- the fan-out ---------------------------------------------------------------------

    async def enqueue(self, events: Sequence[OutgoingEvent], expires_in_seconds: float) -> int:
        now = _now()
        expires_at = now + timedelta(seconds=expires_in_seconds)
        async with self._db.writer.begin() as connection:
            subscribed = (
                await connection.execute(
                    select(hooks.c.id, hooks.c.events)
                    .join(partners, partners.c.id == hooks.c.partner_id)
                    .where(hooks.c.disabled_at.is_(None), partners.c.revoked_at.is_(None))
                )
            ).all()
            rows = [
                {
                    "webhook_id": webhook_id,
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "body": event.body,
                    "status": DeliveryStatus.PENDING.value,
                    "next_attempt_at": now,
                    "expires_at": expires_at,
                }
                for event in events
                for webhook_id, names in subscribed
                if event.event_type in names
            ]
            if not rows:
                return 0
            inserted = await connection.execute(
                self._insert(deliveries)
                .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
                .returning(deliveries.c.id),
                rows,
            )
            return len(inserted.all())

    # -- the sender ----------------------------------------------------------------------

    async def claim_due(
        self, limit: int, per_webhook: int, busy: Mapping[int, int], lease_seconds: float
    ) -> list[DueDelivery]:
        now = _now()
        full = [webhook_id for webhook_id, count in busy.items() if count >= per_webhook]
        statement = (
            select(
                deliveries.c.id,
                deliveries.c.webhook_id,
                deliveries.c.event_id,
                deliveries.c.event_type,
                deliveries.c.body,
                deliveries.c.attempts,
                deliveries.c.expires_at,
                hooks.c.url,
                hooks.c.secret_encrypted,
            )
            .join(hooks, hooks.c.id == deliveries.c.webhook_id)
            .join(partners, partners.c.id == hooks.c.partner_id)
            .where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.next_attempt_at <= now,
                hooks.c.disabled_at.is_(None),
                partners.c.revoked_at.is_(None),  # a revoked partner hears nothing more
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit * _CLAIM_SURPLUS)
            .with_for_update(skip_locked=True, of=deliveries)
        )
        if full:
            statement = statement.where(deliveries.c.webhook_id.not_in(full))
        async with self._db.writer.begin() as connection:
            rows = (await connection.execute(statement)).mappings().all()
            taken: dict[int, int] = dict(busy)
            kept: list[Any] = []
            for row in rows:
                if len(kept) == limit:
                    break
                if taken.get(row["webhook_id"], 0) >= per_webhook:
                    continue  # its share is in flight; the lock drops at commit
                taken[row["webhook_id"]] = taken.get(row["webhook_id"], 0) + 1
                kept.append(row)
            if kept:
                await connection.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([row["id"] for row in kept]))
                    .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
                )
        return [
            DueDelivery(
                id=row["id"],
                webhook_id=row["webhook_id"],
                url=row["url"],
                secret=self._cipher.decrypt(row["secret_encrypted"]),
                event_id=row["event_id"],
                event_type=row["event_type"],
                body=row["body"],
                attempts=row["attempts"],
                expires_at=aware(row["expires_at"]),
            )
            for row in kept
        ]

    async def record(
        self, delivery: DueDelivery, result: AttemptResult, retry_in_seconds: float | None
    ) -> datetime | None:
        now = _now()
        values: dict[str, Any] = {
            "attempts": deliveries.c.attempts + 1,
            "last_attempt_at": now,
            "last_response_status": result.status_code,
            "last_error": None if result.error is None else result.error[:300],
            "last_latency_ms": result.latency_ms,
        }
        if result.succeeded:
            values.update(
                status=DeliveryStatus.SUCCEEDED.value, delivered_at=now, next_attempt_at=None
            )
        elif retry_in_seconds is not None:
            values.update(next_attempt_at=now + timedelta(seconds=retry_in_seconds))
        else:
            values.update(status=DeliveryStatus.FAILED.value, next_attempt_at=None)
        async with self._db.writer.begin() as connection:
            await connection.execute(
                update(deliveries).where(deliveries.c.id == delivery.id).values(**values)
            )
            if result.succeeded:
                await connection.execute(
                    update(hooks)
                    .where(hooks.c.id == delivery.webhook_id, hooks.c.failing_since.is_not(None))
                    .values(failing_since=None)
                )
                return None
            await connection.execute(
                update(hooks)
                .where(hooks.c.id == delivery.webhook_id, hooks.c.failing_since.is_(None))
                .values(failing_since=now)
            )
            since = (
                await connection.execute(
                    select(hooks.c.failing_since).where(hooks.c.id == delivery.webhook_id)
                )
            ).scalar_one_or_none()
        return _aware_or_none(since)

    # -- the log -------------------------------------------------------------------------

    async def page(self, where: DeliveryFilter, request: PageRequest) -> Page[WebhookDelivery]:
        statement = (
            select(deliveries, hooks.c.partner_id)
            .join(hooks, hooks.c.id == deliveries.c.webhook_id)
            .order_by(deliveries.c.id.desc())
            .limit(request.first + 1)
        )
        if where.partner_id is not None:
            statement = statement.where(hooks.c.partner_id == where.partner_id)
        if where.webhook_id is not None:
            statement = statement.where(deliveries.c.webhook_id == where.webhook_id)
        if where.status is not None:
            statement = statement.where(deliveries.c.status == where.status.value)
        if request.after is not None:
            statement = statement.where(deliveries.c.id < cursor_id(request.after[0]))
        async with self._db.reader.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return Page.from_rows(
            rows,
            first=request.first,
            after=request.after,
            cursor_of=lambda row: encode_cursor(DELIVERIES_ORDERING, (row["id"],)),
            node_of=_delivery_of,
        )


def _delivery_of(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=row["id"],
        webhook_id=row["webhook_id"],
        partner_id=row["partner_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        last_response_status=row["last_response_status"],
        last_error=row["last_error"],
        last_latency_ms=row["last_latency_ms"],
        last_attempt_at=_aware_or_none(row["last_attempt_at"]),
        next_attempt_at=_aware_or_none(row["next_attempt_at"]),
        delivered_at=_aware_or_none(row["delivered_at"]),
        created_at=aware(row["created_at"]),
    )


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)
