"""Where reads that may lag go: the streaming replica while it is up and close behind,
else the primary.

A probe on a timer (not per request) asks the primary for its WAL position, then the
replica how far it has replayed and how old its last replayed commit is. The replica
takes reads while it is in recovery and no more than `max_lag_seconds` behind; when it
lags more, refuses connections or does not answer within `timeout_seconds`, `engine`
becomes the primary's until a probe finds it healthy again. A request pays one
attribute read for the choice. A read that fails on the replica with a connection error
marks it down at once and runs again on the primary, so a replica that dies costs no
failed request.

Lag is measured from the replica's side and errs long: when the replica has not replayed
what the primary had written before the probe, its lag is the age of its last replayed
commit (on an idle store that can be minutes, which only sends reads to the primary
until the next probe finds it caught up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

T = TypeVar("T")

# The insert position, not the write one: with synchronous_commit=off a commit can be
# ahead of what has been written out, and "caught up" must include it.
_PRIMARY_POSITION = text("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
_REPLICA_STATE = text(
    "SELECT pg_is_in_recovery(),"
    " pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint,"
    " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
)


# SQLSTATE classes of a server that is not there to answer: 08 connection exception,
# 57P operator intervention (shutting down, crashed, still starting: 57P01-57P03).
_UNAVAILABLE_STATES = ("08", "57P")


def is_connection_error(error: BaseException) -> bool:
    """The replica could not be reached or dropped the connection (not a bad statement)."""
    if isinstance(error, OSError | TimeoutError | OperationalError | InterfaceError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    state = getattr(error.orig, "sqlstate", None) or ""
    return error.connection_invalidated or state.startswith(_UNAVAILABLE_STATES)


@dataclass(frozen=True, slots=True)
class ReplicaHealth:
    """What the last probe found: `lag_seconds` None when the replica did not answer."""

    healthy: bool
    lag_seconds: float | None
    reason: str
    checked_at: float  # time.monotonic()


@dataclass
class ReadCounts:
    """Lag-tolerant reads by where they ran; `retried` failed on the replica first."""

    replica: int = 0
    primary: int = 0
    retried: int = 0


class ReplicaRouter:
    def __init__(
        self,
        replica: AsyncEngine,
        primary: AsyncEngine,
        *,
        max_lag_seconds: float,
        probe_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.replica = replica
        self.primary = primary
        self._max_lag = max_lag_seconds
        self._every = probe_seconds
        self._timeout = timeout_seconds
        # The primary until the first probe vouches for the replica: a process that never
        # starts probing (a CLI command, the worker) reads current data.
        self.engine: AsyncEngine = primary
        self.health = ReplicaHealth(False, None, "not probed yet", time.monotonic())
        self.counts = ReadCounts()
        self._task: asyncio.Task[None] | None = None

    @property
    def on_replica(self) -> bool:
        return self.engine is self.replica

    async def read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async def connected(engine: AsyncEngine) -> T:
            async with engine.connect() as connection:
                return await work(connection)

        return await self.run(connected)

    async def run(self, on: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        """`on(engine)` with the engine reads go to now: the replica's, then the
        primary's when the replica fails with a connection error."""
        engine = self.engine
        if engine is self.replica:
            try:
                result = await on(engine)
            except Exception as error:
                if not is_connection_error(error):
                    raise
                self._replica_failed(error)
                self.counts.retried += 1
            else:
                self.counts.replica += 1
                return result
        self.counts.primary += 1
        return await on(self.primary)

    def _replica_failed(self, error: BaseException) -> None:
        if self.engine is self.replica:
            log.warning("read replica failed (%s): reads go to the primary", type(error).__name__)
        self.engine = self.primary
        reason = f"read failed: {type(error).__name__}"
        self.health = ReplicaHealth(False, None, reason, time.monotonic())

    async def probe(self) -> ReplicaHealth:
        """Ask both servers once and route by the answer."""
        health = await self._measure()
        was_on_replica = self.engine is self.replica
        self.health = health
        self.engine = self.replica if health.healthy else self.primary
        if was_on_replica != health.healthy:
            log.warning(
                "read replica %s: %s",
                "back in use" if health.healthy else "out of use, reads go to the primary",
                health.reason,
            )
        return health

    async def _measure(self) -> ReplicaHealth:
        try:
            async with asyncio.timeout(self._timeout):
                async with self.primary.connect() as connection:
                    primary_position = int(await connection.scalar(_PRIMARY_POSITION) or 0)
                async with self.replica.connect() as connection:
                    in_recovery, replayed, commit_age = (
                        await connection.execute(_REPLICA_STATE)
                    ).one()
        except Exception as error:
            if not is_connection_error(error):
                log.exception("read replica probe failed")
            reason = f"unreachable: {type(error).__name__}"
            return ReplicaHealth(False, None, reason, time.monotonic())
        now = time.monotonic()
        if not in_recovery:  # a server of its own (or the primary itself): current by definition
            return ReplicaHealth(True, 0.0, "not in recovery", now)
        if replayed is not None and replayed >= primary_position:
            return ReplicaHealth(True, 0.0, "caught up", now)
        lag = math.inf if commit_age is None else max(0.0, float(commit_age))
        if lag <= self._max_lag:
            return ReplicaHealth(True, lag, f"{lag:.2f} s behind", now)
        return ReplicaHealth(False, lag, f"{lag:.2f} s behind (max {self._max_lag:g} s)", now)

    async def wait_replayed(self) -> bool:
        """Until the replica has replayed what the primary has written so far: whether it
        did. Gives up after the staleness bound (by then every probing process has moved
        its reads to the primary), at once when the primary's position cannot be read,
        and at once when the replica is unreachable (nobody can read it then either)."""
        bound = self._max_lag + self._every + self._timeout
        deadline = time.monotonic() + bound
        try:
            async with asyncio.timeout(self._timeout), self.primary.connect() as connection:
                target = int(await connection.scalar(_PRIMARY_POSITION) or 0)
        except Exception as error:
            if not is_connection_error(error):
                raise
            return False
        while True:
            try:
                async with asyncio.timeout(self._timeout), self.replica.connect() as connection:
                    in_recovery, replayed, _ = (await connection.execute(_REPLICA_STATE)).one()
            except TimeoutError:
                pass  # slow, not gone: keep waiting until the deadline
            except Exception as error:
                if not is_connection_error(error):
                    raise
                log.info("read replica unreachable (%s): not waiting", type(error).__name__)
                return False
            else:
                if not in_recovery or (replayed is not None and replayed >= target):
                    return True
            if time.monotonic() >= deadline:
                log.warning("read replica did not replay the last write within %g s", bound)
                return False
            await asyncio.sleep(0.02)

    async def start(self) -> None:
        """Probe once (bounded by the timeout), then every `probe_seconds` until stopped."""
        await self.probe()
        if self._task is None:
            self._task = asyncio.create_task(self._probe_forever(), name="replica-probe")

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.probe()
            except Exception:  # never let the loop die: routing would freeze where it is
                log.exception("read replica probe crashed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.engine = self.primary
