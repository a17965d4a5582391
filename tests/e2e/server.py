"""Starting the real server process for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CONFIG_VARS = (
    "DATABASE_URL",
    "DATABASE_READ_URL",
    "REDIS_URL",
    "ENVIRONMENT",
    "EXPOSE_STATEMENT_COUNT",
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


@contextmanager
def serving(cwd: Path, env: dict[str, str]) -> Iterator[tuple[httpx.Client, Path]]:
    port = free_port()
    log = cwd / f"server-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "serve", "--port", str(port)],
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
