"""Several real processes of the app at once, as production runs them: API servers on
their own ports (as behind a load balancer) and event workers, each in its own process
group so a fixture can always take it down, and a test can kill one as a crash would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.server import ROOT, free_port

STOP_SECONDS = 15.0  # SIGTERM, then SIGKILL for what still runs


@dataclass
class AppProcess:
    """One `python app.py ...` process; `url` for an API server."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def crash(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a lost machine would: no shutdown."""
        _signal_group(self.popen, signal.SIGKILL)
        self.popen.wait(timeout=STOP_SECONDS)

    async def ready(self, seconds: float = 60.0) -> None:
        """Until /readyz answers 200 (an API server) or the worker says it started."""
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                if self.popen.poll() is not None:
                    raise AssertionError(f"{self.name} exited:\n{self.output()}")
                if await self._is_ready(client):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.name} not ready in {seconds:g} s:\n{self.output()}"
                    )
                await asyncio.sleep(0.1)

    async def _is_ready(self, client: httpx.AsyncClient) -> bool:
        if not self.url:
            return "event worker started" in self.output()
        try:
            return (await client.get(f"{self.url}/readyz")).status_code == 200
        except httpx.TransportError:
            return False


def _signal_group(popen: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signum)


def _stop(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is not None:
        return
    _signal_group(popen, signal.SIGTERM)
    try:
        popen.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        _signal_group(popen, signal.SIGKILL)
        popen.wait(timeout=STOP_SECONDS)


@contextlib.contextmanager
def app_processes(
    cwd: Path, env: dict[str, str], *, servers: int, workers: int
) -> Iterator[tuple[list[AppProcess], list[AppProcess]]]:
    """`servers` x `python app.py serve` on free ports and `workers` x `python app.py
    worker`, all on `env`; every one stopped at the end, whatever happened."""
    started: list[AppProcess] = []

    def start(name: str, args: list[str], extra: dict[str, str], url: str = "") -> AppProcess:
        log = cwd / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, str(ROOT / "app.py"), *args],
                cwd=cwd,
                env={**env, **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for killpg
            )
        process = AppProcess(name, popen, log, url)
        started.append(process)
        return process

    try:
        api = []
        for n in range(servers):
            port = free_port()
            api.append(
                start(f"api-{n}", ["serve", "--port", str(port)], {}, f"http://127.0.0.1:{port}")
            )
        # INFO: the worker says when it has started (and what it reclaimed, if anything).
        background = [
            start(f"worker-{n}", ["worker"], {"LOG_LEVEL": "INFO"}) for n in range(workers)
        ]
        yield api, background
    finally:
        for process in started:
            _stop(process.popen)
