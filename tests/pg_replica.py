"""A private PostgreSQL primary and its streaming standby, for the read-replica tests.

The shared server allows no replication connections, so the harness makes its own pair:
`initdb` a primary (wal_level=replica, trust, fsync off) on a free port, `pg_basebackup
-R` it into a standby (hot_standby) on another, both in one temporary directory owned
by the `postgres` user (PostgreSQL refuses to run as root). `stop()` ends both with
`pg_ctl stop -m immediate`; the directory goes with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
START_TIMEOUT_SECONDS = 30.0


def server_binaries() -> Path | None:
    """Where initdb, pg_ctl and pg_basebackup live; None when this machine has none."""
    wanted = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
    for candidate in (os.environ.get("PG_BIN", ""), *PG_BIN_CANDIDATES):
        if candidate and all((Path(candidate) / name).exists() for name in wanted):
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class ReplicaPair:
    bin: Path
    root: Path
    primary_port: int
    standby_port: int

    @property
    def primary_data(self) -> Path:
        return self.root / "primary"

    @property
    def standby_data(self) -> Path:
        return self.root / "standby"

    def url(self, port: int, database: str = "commerce_replica") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def standby_url(self) -> str:
        return self.url(self.standby_port)

    def _run(self, *args: str) -> None:
        subprocess.run(_as_postgres(list(args)), check=True, capture_output=True, timeout=60)

    def _pg_ctl(self, data: Path, *args: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), *args)

    def _options(self, port: int) -> str:
        return (
            f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB "
            "-c max_connections=60 -c max_wal_senders=4 -c wal_level=replica "
            "-c hot_standby=on -c wal_receiver_status_interval=1s"
        )

    def start_primary(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.primary_data), "-U", "postgres",
            "--auth=trust", "--no-sync",
        )  # fmt: skip
        with (self.primary_data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self._start(self.primary_data, self.primary_port, "primary.log")

    def clone_standby(self) -> None:
        self._run(
            str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary_port),
            "-U", "postgres", "-D", str(self.standby_data), "-R", "-X", "stream",
            "--checkpoint=fast", "--no-sync",
        )  # fmt: skip
        self.start_standby()

    def start_standby(self) -> None:
        self._start(self.standby_data, self.standby_port, "standby.log")

    def stop_standby(self) -> None:
        """What a crashed or unplugged replica looks like: gone at once, connections cut."""
        self._pg_ctl(self.standby_data, "stop", "-m", "immediate")

    def _start(self, data: Path, port: int, log: str) -> None:
        self._pg_ctl(data, "-l", str(self.root / log), "-o", self._options(port), "-w", "start")

    def stop(self) -> None:
        for data in (self.standby_data, self.primary_data):
            if (data / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):  # already gone
                    self._pg_ctl(data, "stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_pair(bin: Path) -> ReplicaPair:
    root = Path(tempfile.mkdtemp(prefix="pg-replica-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    pair = ReplicaPair(bin, root, _free_port(), _free_port())
    try:
        pair.start_primary()
        pair.clone_standby()
    except BaseException:
        pair.stop()
        raise
    return pair


async def create_database(pair: ReplicaPair, name: str = "commerce_replica") -> None:
    admin = await asyncpg.connect(
        host="127.0.0.1", port=pair.primary_port, user="postgres", database="postgres"
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def wait_until_replayed(pair: ReplicaPair, within: float = START_TIMEOUT_SECONDS) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(
        host="127.0.0.1", port=pair.primary_port, user="postgres", database="postgres"
    )
    try:
        target = await primary.fetchval("SELECT pg_current_wal_insert_lsn()")  # an int
    finally:
        await primary.close()
    deadline = time.monotonic() + within
    while True:
        try:
            standby = await asyncpg.connect(
                host="127.0.0.1", port=pair.standby_port, user="postgres", database="postgres"
            )
            try:
                behind = await standby.fetchval(
                    "SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())", target
                )
            finally:
                await standby.close()
            if behind is not None and behind <= 0:
                return
        except (OSError, asyncpg.CannotConnectNowError):
            pass  # still starting
        if time.monotonic() > deadline:
            raise TimeoutError("the standby did not catch up with the primary")
        await asyncio.sleep(0.05)
