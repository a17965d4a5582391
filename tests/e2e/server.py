"""Starting the real server process for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    TEST_GIFT_CARD_CODE_KEY,
    TEST_PII_INDEX_KEY,
    TEST_PII_KEY,
    TEST_REDIS_URL,
    TEST_STATUS_TOKEN_KEY,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG_VARS = (
    "DATABASE_URL",
    "DATABASE_READ_URL",
    "REDIS_URL",
    "ENVIRONMENT",
    "EXPOSE_STATEMENT_COUNT",
    "OTEL_TRACES_EXPORTER",  # a developer's own collector never gets the tests' traces
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(values, LOG_LEVEL="WARNING")
    return env


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python app.py ARGS...` as an operator would run it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_cli(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = cli(cwd, env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


UVICORN = ("-m", "uvicorn", "app:app", "--app-dir", str(ROOT))


@contextmanager
def serving(
    cwd: Path, env: dict[str, str], command: tuple[str, ...] = (str(ROOT / "app.py"), "serve")
) -> Iterator[tuple[httpx.Client, Path]]:
    """The server started by `command` (python's arguments; `python app.py serve` by
    default, or e.g. `UVICORN` plus flags) on a free port."""
    port = free_port()
    log = cwd / f"server-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, *command, "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "server did not come up: " + log.read_text()
                time.sleep(0.1)
            yield client, log
    finally:
        process.terminate()
        process.wait(timeout=15)


def production_env(database_url: str, **extra: str) -> dict[str, str]:
    """A production server on the test database and Redis."""
    return server_env(
        DATABASE_URL=database_url,
        REDIS_URL=TEST_REDIS_URL,
        ENVIRONMENT="production",
        PAYMENT_GATEWAY="test",
        PII_ENCRYPTION_KEYS=TEST_PII_KEY,
        PII_INDEX_KEY=TEST_PII_INDEX_KEY,
        ORDER_STATUS_TOKEN_KEY=TEST_STATUS_TOKEN_KEY,
        GIFT_CARD_CODE_KEY=TEST_GIFT_CARD_CODE_KEY,
        **extra,
    )


NODE_CLIENTS = Path(__file__).resolve().parent / "apollo"


def require_node_package(package: str) -> None:
    """Skip the calling test module unless Node.js and the npm package are installed."""
    if shutil.which("node") is None or not (NODE_CLIENTS / "node_modules" / package).exists():
        pytest.skip(
            "needs Node.js and `npm ci --prefix tests/e2e/apollo` (make test does both)",
            allow_module_level=True,
        )


async def run_node(script: str, *args: str) -> Any:
    """Run one of tests/e2e/apollo's scripts; the JSON it printed on its last line."""
    done = await asyncio.to_thread(
        subprocess.run,
        ["node", str(NODE_CLIENTS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
