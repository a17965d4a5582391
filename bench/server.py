"""The server under test: `uvicorn app:app` in its own process group, its environment,
`app.py` commands, health and a clean stop."""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.config import HEALTH_TIMEOUT_S, HOST, RESULTS_DIR, SERVER_STOP_TIMEOUT_S, BenchError, log

# --------------------------------------------------------------------------- server process


def server_python(app_dir: Path) -> str:
    venv_python = app_dir / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


# Encrypts benchmark orders' emails and addresses only.
BENCH_PII_KEY = base64.urlsafe_b64encode(b"bench-pii-key-not-for-real-data!").decode()
BENCH_INDEX_KEY = "bench-blind-index-key-not-for-real-data"
BENCH_STATUS_TOKEN_KEY = "bench-order-status-token-key-not-for-real-data"
BENCH_GIFT_CARD_CODE_KEY = "bench-gift-card-code-key-not-for-real-data"


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    env.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        ENVIRONMENT="production",
        EXPOSE_STATEMENT_COUNT="true",
        PAYMENT_GATEWAY="test",  # the in-memory sandbox: no network, Stripe's test cards
        PII_ENCRYPTION_KEYS=BENCH_PII_KEY,
        PII_INDEX_KEY=BENCH_INDEX_KEY,
        ORDER_STATUS_TOKEN_KEY=BENCH_STATUS_TOKEN_KEY,
        GIFT_CARD_CODE_KEY=BENCH_GIFT_CARD_CODE_KEY,
        # One load generator on one address: limits that never bite, but are still
        # charged on every request, so their cost is in the figures.
        RATE_LIMIT_CAPACITY="1000000000",
        RATE_LIMIT_RESTORE_RATE="1000000000",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(args.app_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_app_command(
    args: argparse.Namespace, command: Sequence[str], timeout_s: float, *, capture: bool
) -> str:
    argv = [server_python(args.app_dir), "app.py", *command]
    try:
        completed = subprocess.run(
            argv,
            cwd=args.app_dir,
            env=server_env(args),
            capture_output=capture,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`app.py {' '.join(command)}` took longer than {timeout_s:.0f}s") from exc
    if completed.returncode != 0:
        detail = f"\n{completed.stdout}{completed.stderr}" if capture else ""
        raise BenchError(
            f"`app.py {' '.join(command)}` failed (exit {completed.returncode}){detail}"
        )
    return completed.stdout or ""


def ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise BenchError(f"port {port} on {HOST} is in use; pass --port") from exc


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log_path: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"server exited with code {self.process.returncode}; last log lines:\n"
                f"{log_tail(self.log_path)}"
            )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_server(server: Server) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL whatever is left."""
    pgid = server.process.pid  # started with start_new_session=True: pgid == pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    try:
        server.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log("server ignored SIGTERM; sending SIGKILL")
    deadline = time.monotonic() + 5.0
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        log(f"server process {pgid} did not exit after SIGKILL")


@contextmanager
def running_server(args: argparse.Namespace, workers: int) -> Iterator[Server]:
    ensure_port_free(args.port)
    log_path = RESULTS_DIR / f"server-w{workers}.log"
    command = [
        server_python(args.app_dir),
        "-m",
        "uvicorn",
        "app:app",
        "--host",
        HOST,
        "--port",
        str(args.port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=args.app_dir,
            env=server_env(args),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, log_path=log_path)
    try:
        wait_healthy(server, f"http://{HOST}:{args.port}/healthz")
        yield server
    finally:
        stop_server(server)


def wait_healthy(server: Server, url: str) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last_error = "no response yet"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            server.check_alive()
            try:
                response = client.get(url)
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            time.sleep(0.2)
    raise BenchError(
        f"{url} not healthy after {HEALTH_TIMEOUT_S:.0f}s ({last_error}); last log lines:\n"
        f"{log_tail(server.log_path)}"
    )
