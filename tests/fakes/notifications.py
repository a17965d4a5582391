"""In-memory notification ports: a store unique on (kind, key) like the notifications
table, a mailer that keeps what it sent (or refuses while `fail` is set), and orders
looked up by public id."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from domain.notifications import Message, NotificationKind, NotificationStatus
from domain.orders import Order

if TYPE_CHECKING:
    from domain.notifications import Mailer, NotificationStore, OrdersByPublicId

Row = tuple[NotificationKind, str, Message, NotificationStatus]


class FakeNotificationStore:
    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}  # by notification id, in claim order
        self._next_id = 1

    async def claim(
        self, kind: NotificationKind, key: str, message: Message, status: NotificationStatus
    ) -> int | None:
        if any((k, q) == (kind, key) for k, q, _m, _s in self.rows.values()):
            return None
        notification_id = self._next_id
        self._next_id += 1
        self.rows[notification_id] = (kind, key, message, status)
        return notification_id

    async def settle(self, notification_id: int, status: NotificationStatus) -> None:
        kind, key, message, _status = self.rows[notification_id]
        self.rows[notification_id] = (kind, key, message, status)

    async def release(self, notification_id: int) -> None:
        del self.rows[notification_id]

    async def close(self, kind: NotificationKind, key: str) -> None:
        # The row stays under a retired key, as the SQL store renames it.
        for notification_id, (k, q, message, status) in list(self.rows.items()):
            if (k, q) == (kind, key):
                self.rows[notification_id] = (k, f"{q}#{notification_id}", message, status)


class FakeMailer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Message] = []
        self.fail = fail

    async def send(self, message: Message) -> None:
        if self.fail:
            raise ConnectionError("mail server down")
        self.sent.append(message)


class FakeOrdersByPublicId:
    def __init__(self, orders: Iterable[Order] = ()) -> None:
        self.orders = {order.public_id: order for order in orders}

    async def by_public_id(self, public_id: str) -> Order | None:
        return self.orders.get(public_id)


if TYPE_CHECKING:
    _store: NotificationStore = FakeNotificationStore()
    _mailer: Mailer = FakeMailer()
    _orders: OrdersByPublicId = FakeOrdersByPublicId()
