"""Engines: a transactional writer, AUTOCOMMIT readers (the primary's, and a replica's
behind a router when DATABASE_READ_URL is set), plus a statement counter.

The rule each repository states by what it calls:
- `db.writer`: transactions on the primary.
- `db.primary_reader`: reads that must see a write just made or be current (checkout,
  staff edits and what answers them, the search indexer, sessions, money).
- `db.read(work)`: reads that may lag by the replica's bound (catalog pages, search,
  reviews); the primary when no replica is configured, when it is unhealthy, or inside
  `domain.read_consistency.current_reads()` (every mutation runs there).
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from sqlalchemy import event
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from domain.read_consistency import current_reads_wanted
from persistence.read_router import ReplicaRouter

T = TypeVar("T")


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
        self.count()

    def count(self) -> None:
        """One statement more: what the engines' listener calls, and what runs a
        statement on the driver itself (persistence/driver_reads.py) calls."""
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


@dataclass(frozen=True, slots=True)
class ReplicaPolicy:
    """DATABASE_READ_MAX_LAG_SECONDS, _PROBE_SECONDS and _TIMEOUT_SECONDS."""

    max_lag_seconds: float = 2.0
    probe_seconds: float = 1.0
    timeout_seconds: float = 1.0


@dataclass
class Database:
    writer: AsyncEngine
    primary_reader: AsyncEngine
    counter: StatementCounter
    replica: ReplicaRouter | None = None
    # Whether fixed-shape catalog reads may skip SQLAlchemy's execute for asyncpg's own
    # (persistence/driver_reads.py). Off when something observes statements through
    # SQLAlchemy's events (tracing's spans): those reads would go unseen.
    driver_reads: bool = True

    @property
    def is_postgres(self) -> bool:
        return self.writer.dialect.name == "postgresql"

    @property
    def reader(self) -> AsyncEngine:
        """The engine lag-tolerant reads would use now (tools and tests; repositories
        call `read`, which also retries on the primary)."""
        return self.primary_reader if self.replica is None else self.replica.engine

    @property
    def engines(self) -> dict[str, AsyncEngine]:
        """Every engine by name, for what observes them all (traces, pool gauges)."""
        engines = {"writer": self.writer, "reader": self.primary_reader}
        if self.replica is not None:
            engines["replica"] = self.replica.replica
        return engines

    async def read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`work` on a connection that may lag behind the primary by the replica's bound."""
        router = self.replica
        if router is None or current_reads_wanted():
            async with self.primary_reader.connect() as connection:
                return await work(connection)
        return await router.read(work)

    async def read_on(self, run: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        """Like `read`, for work that checks its own connection out of the engine."""
        router = self.replica
        if router is None or current_reads_wanted():
            return await run(self.primary_reader)
        return await router.run(run)

    async def replica_replayed(self) -> None:
        """Wait (bounded) until the replica has replayed every write so far: what a cache
        keyed on "the data changed" waits for before it says so, or a reader on the
        replica would compute the old answer under the new key."""
        if self.replica is not None:
            await self.replica.wait_replayed()

    async def start(self) -> None:
        """Start routing to the replica (the primary until then)."""
        if self.replica is not None:
            await self.replica.start()

    async def dispose(self) -> None:
        if self.replica is not None:
            await self.replica.stop()
            await self.replica.replica.dispose()
        await self.writer.dispose()
        await self.primary_reader.dispose()


def create_database(
    url: str,
    read_url: str | None = None,
    pool_size: int = 10,
    policy: ReplicaPolicy | None = None,
) -> Database:
    counter = StatementCounter()
    writer = _engine(url, pool_size)
    # Reads run without BEGIN/ROLLBACK around them: one statement, not three. Each
    # reader is its own engine (own pool) set to AUTOCOMMIT once per connection;
    # `execution_options(isolation_level=...)` would set and reset it per checkout.
    primary_reader = _engine(url, pool_size, isolation_level="AUTOCOMMIT")
    counter.attach(writer)
    counter.attach(primary_reader)
    router = None
    if read_url and read_url != url:
        policy = policy or ReplicaPolicy()
        replica = _engine(
            read_url,
            pool_size,
            isolation_level="AUTOCOMMIT",
            # A replica that does not answer is given up on this fast (asyncpg's default
            # is 60 s); the read then runs on the primary.
            connect_args={"timeout": policy.timeout_seconds},
        )
        counter.attach(replica)
        router = ReplicaRouter(
            replica,
            primary_reader,
            max_lag_seconds=policy.max_lag_seconds,
            probe_seconds=policy.probe_seconds,
            timeout_seconds=policy.timeout_seconds,
        )
    return Database(writer=writer, primary_reader=primary_reader, counter=counter, replica=router)


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


# SQLSTATE classes and codes that say "the database cannot serve now", not "this query is
# wrong": connection exceptions (08), too many connections and other lack of resources
# (53), and an administrator's or a crash's shutdown, or a server still starting (57P0x).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53")
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database could not be reached or could not take us (refused,
    dropped, full, shutting down, or no pooled connection free in time): what a client should
    get as SERVICE_UNAVAILABLE and retry, rather than an internal error."""
    if isinstance(error, sqlalchemy_exc.TimeoutError):  # no pooled connection in time
        return True
    if isinstance(error, sqlalchemy_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        driver = getattr(error.orig, "driver_exception", error.orig)
        state = getattr(driver, "sqlstate", None)
        if isinstance(state, str):
            return state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or state in _UNAVAILABLE_SQLSTATES
        return isinstance(driver, OSError)
    # asyncpg raises the socket's own error when nothing listens (SQLAlchemy passes it on).
    return isinstance(error, OSError)
