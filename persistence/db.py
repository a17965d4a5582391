"""Engines: a transactional writer and an AUTOCOMMIT reader, plus a statement counter."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def aware(value: datetime | str) -> datetime:
    """A UTC datetime from a row (SQLite hands them back naive) or from cached ISO text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass
class StatementCounter:
    """Counts SQL statements per engine; `scope()` also counts per request."""

    total: int = 0
    _current: contextvars.ContextVar[list[int] | None] = field(
        default_factory=lambda: contextvars.ContextVar("statements", default=None)
    )

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, *_: Any) -> None:
        self.total += 1
        bucket = self._current.get()
        if bucket is not None:
            bucket[0] += 1

    @contextmanager
    def scope(self) -> Iterator[list[int]]:
        bucket = [0]
        token = self._current.set(bucket)
        try:
            yield bucket
        finally:
            self._current.reset(token)


@dataclass
class Database:
    writer: AsyncEngine
    reader: AsyncEngine
    counter: StatementCounter

    @property
    def is_postgres(self) -> bool:
        return self.writer.dialect.name == "postgresql"

    async def dispose(self) -> None:
        await self.writer.dispose()
        await self.reader.dispose()


def create_database(url: str, read_url: str | None = None, pool_size: int = 10) -> Database:
    counter = StatementCounter()
    writer = _engine(url, pool_size)
    # Reads run without BEGIN/ROLLBACK around them: one statement, not three. The
    # reader is its own engine (own pool) set to AUTOCOMMIT once per connection;
    # `execution_options(isolation_level=...)` would set and reset it per checkout.
    reader = _engine(read_url or url, pool_size, isolation_level="AUTOCOMMIT")
    counter.attach(writer)
    counter.attach(reader)
    return Database(writer=writer, reader=reader, counter=counter)


def ensure_sqlite_directory(url: str) -> None:
    """SQLite creates its file, not the folder it lives in."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _engine(url: str, pool_size: int, **options: Any) -> AsyncEngine:
    options.update(json_serializer=_json_dumps, json_deserializer=orjson.loads)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        ensure_sqlite_directory(url)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        **options,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def pool_usage(engine: AsyncEngine) -> dict[str, int]:
    """What an engine's pool holds now: connections in use, idle, beyond its size, its
    capacity, and tasks waiting for one (0 for pools that do not queue, e.g. SQLite's)."""
    pool: Any = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    if not callable(size):
        return {}
    overflow = max(0, int(pool.overflow()))
    # AsyncAdaptedQueuePool waits on an asyncio.Queue; its waiting getters are what
    # "waiting" means. Private to asyncio, so read defensively.
    queue = getattr(getattr(pool, "_pool", None), "__dict__", {}).get("_queue")
    waiting = len(getattr(queue, "_getters", ()) or ())
    return {
        "in_use": int(pool.checkedout()),
        "idle": int(pool.checkedin()),
        "overflow": overflow,
        "capacity": int(size()) + int(getattr(pool, "_max_overflow", 0)),
        "waiting": waiting,
    }
