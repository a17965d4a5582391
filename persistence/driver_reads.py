"""Fixed-shape reads run on asyncpg itself: compiled once, prepared once per connection.

Through SQLAlchemy, every execute of a prebuilt statement still builds its cache key,
looks the compiled form up, makes an execution context and a cursor, and wraps each row
twice (Row, then RowMapping): for a read whose text never changes. Here the text and the
order of its parameters are computed once per statement (`DriverStatement`); a read
checks a connection out of the same engine's pool, hands asyncpg the text and positional
arguments (asyncpg prepares it once per connection and keeps it in its statement cache)
and returns asyncpg's records, which the record builders read by column name.

What stays as SQLAlchemy has it: the pools (the same engines, so AUTOCOMMIT, connect
timeouts and recycling), the JSON codecs the dialect installs on each connection, the
read replica's routing and fallback, the statement counter (counted here, before the
statement goes out, as the engines' listener counts), and errors: a driver error comes
out as the SQLAlchemy exception the same read would raise there, and a connection that
died under a read is invalidated rather than handed to the next request.

PostgreSQL through asyncpg only; other drivers (the embedded SQLite) keep SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.types import ARRAY
from sqlalchemy.util import greenlet_spawn

from persistence.db import Database, StatementCounter

_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement's SQL in the driver's own placeholders ($1, $2, ...) and, for each
    position, the bind name it takes and the value it has when not given (a literal of
    the statement, such as the ACTIVE status)."""

    sql: str
    names: tuple[str, ...]
    defaults: tuple[Any, ...]

    @classmethod
    def compile(cls, statement: Executable, dialect: Dialect) -> DriverStatement:
        """Compile `statement` for asyncpg; a statement whose parameters SQLAlchemy would
        convert (other than arrays of plain items) or expand per call is refused, since
        its arguments could not go to the driver as they are."""
        compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
        positions = compiled.positiontup
        if positions is None or "POSTCOMPILE" in compiled.string:
            raise ValueError("only positional, non-expanding statements run on the driver")
        for name in positions:
            bind_type = compiled.binds[name].type
            if _converted(bind_type, dialect):
                raise ValueError(f"parameter {name!r} ({bind_type}) needs SQLAlchemy's conversion")
        values = compiled.params
        defaults = tuple(
            _REQUIRED if compiled.binds[name].required else values[name] for name in positions
        )
        return cls(compiled.string, tuple(positions), defaults)

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for name, default in zip(self.names, self.defaults, strict=True):
            value = parameters.get(name, default)
            if value is _REQUIRED:
                raise KeyError(f"statement parameter {name!r} not given")
            arguments.append(value)
        return arguments


def _converted(bind_type: Any, dialect: Dialect) -> bool:
    if isinstance(bind_type, ARRAY):
        # ARRAY's processor only applies its items' one (and makes a list): a list of
        # plain items goes to asyncpg as it is.
        return _converted(bind_type.item_type, dialect)
    return bind_type.dialect_impl(dialect).bind_processor(dialect) is not None


def uses_driver(db: Database) -> bool:
    """Whether this database's reads may run on the driver: PostgreSQL through asyncpg,
    with nothing else observing statements (tracing's spans come from SQLAlchemy)."""
    return db.driver_reads and db.writer.dialect.driver == "asyncpg"


async def fetch(
    db: Database,
    statement: DriverStatement,
    parameters: Mapping[str, Any],
    *,
    primary: bool,
) -> list[Any]:
    """The rows of `statement` (asyncpg records), on the primary's reader when `primary`,
    else where `db.read` would run it (the replica while it is healthy)."""
    arguments = statement.arguments(parameters)
    counter = db.counter
    if primary or db.replica is None:
        return await fetch_on(db.primary_reader, statement.sql, arguments, counter)

    async def on(engine: AsyncEngine) -> list[Any]:
        return await fetch_on(engine, statement.sql, arguments, counter)

    return await db.read_on(on)


async def fetch_on(
    engine: AsyncEngine, sql: str, arguments: Sequence[Any], counter: StatementCounter
) -> list[Any]:
    """One statement on a connection checked out of `engine`'s pool.

    A raw checkout: no Connection object, no engine events, and on return no reset
    statement (the reader's connections are AUTOCOMMIT: asyncpg holds no transaction to
    roll back, so SQLAlchemy's reset costs nothing but Python). A cancelled read closes
    its connection without waiting (its protocol state is unknown), as SQLAlchemy does."""
    pooled = await engine.raw_connection()
    try:
        counter.count()
        try:
            driver: Any = pooled.driver_connection
            rows: list[Any] = await driver.fetch(sql, *arguments)
        except Exception as error:
            raise _translated(engine, pooled, sql, arguments, error) from error
        except BaseException:  # cancelled mid-statement (a request timeout)
            pooled.invalidate()
            raise
        return rows
    finally:
        # In a greenlet: a connection beyond the pool's size is closed on return, and
        # closing an asyncpg connection awaits.
        await greenlet_spawn(pooled.close)


def _translated(
    engine: AsyncEngine, pooled: Any, sql: str, arguments: Sequence[Any], error: Exception
) -> BaseException:
    """`error` as SQLAlchemy raises it from an execute: the DB-API adapter's exception
    wrapped in `sqlalchemy.exc.DBAPIError` (its subclass by kind), with
    `connection_invalidated` when the connection is gone. As SQLAlchemy does then, the
    connection is closed and every connection the pool made before it is replaced at its
    next checkout (a server restart drops them all)."""
    dialect = engine.dialect
    adapted = pooled.dbapi_connection
    dbapi_error: BaseException = error
    try:
        adapted._handle_exception(error)  # raises the adapter's DB-API exception
    except Exception as translated:
        dbapi_error = translated
    dbapi = dialect.loaded_dbapi
    if not isinstance(dbapi_error, dbapi.Error):
        return dbapi_error  # not a driver error (OSError, a bug): raised as it is
    gone = bool(dialect.is_disconnect(dbapi_error, adapted, None))
    if gone:
        engine.sync_engine.pool._invalidate(pooled, dbapi_error)
    return sqlalchemy_exc.DBAPIError.instance(
        sql,
        tuple(arguments),
        dbapi_error,
        dbapi.Error,
        hide_parameters=True,
        connection_invalidated=gone,
        dialect=dialect,
    )
