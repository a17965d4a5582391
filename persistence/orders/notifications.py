"""Notifications in SQL: a claim is an insert that loses quietly to an existing (kind, key).

Recipient and body are stored encrypted (PII_ENCRYPTION_KEYS): a body can carry an
address, a reset code or an order's status token, none of which rests in clear."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.notifications import Message, NotificationKind, NotificationStatus
from persistence.db import Database
from persistence.pii import PiiCipher
from persistence.tables import notifications


class SqlNotificationStore:
    def __init__(self, db: Database, cipher: PiiCipher) -> None:
        self._db = db
        self._cipher = cipher
        self._insert: Any = postgresql.insert if db.is_postgres else sqlite.insert

    async def claim(
        self, kind: NotificationKind, key: str, message: Message, status: NotificationStatus
    ) -> int | None:
        recipient = None if message.to is None else self._cipher.encrypt(message.to)
        async with self._db.writer.begin() as connection:
            claimed = (
                await connection.execute(
                    self._insert(notifications)
                    .values(
                        kind=kind.value,
                        key=key,
                        recipient_encrypted=recipient,
                        subject=message.subject,
                        body_encrypted=self._cipher.encrypt(message.body),
                        status=status.value,
                    )
                    .on_conflict_do_nothing(index_elements=["kind", "key"])
                    .returning(notifications.c.id)
                )
            ).scalar()
        return None if claimed is None else int(claimed)

    async def settle(self, notification_id: int, status: NotificationStatus) -> None:
        async with self._db.writer.begin() as connection:
            await connection.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(status=status.value, sent_at=func.now())
            )

    async def release(self, notification_id: int) -> None:
        async with self._db.writer.begin() as connection:
            await connection.execute(
                delete(notifications).where(
                    notifications.c.id == notification_id,
                    notifications.c.status == NotificationStatus.PENDING.value,
                )
            )

    async def close(self, kind: NotificationKind, key: str) -> None:
        # The closed row keeps its history under `<key>#<id>`, unique by its id.
        async with self._db.writer.begin() as connection:
            await connection.execute(
                update(notifications)
                .where(notifications.c.kind == kind.value, notifications.c.key == key)
                .values(key=notifications.c.key + "#" + cast(notifications.c.id, String))
            )
