"""A private three-master Redis Cluster from Debian's redis-server, for the suites that
run against a cluster (TEST_REDIS_CLUSTER=1; see tests/conftest.py).

Each master listens on a free port, keeps nothing on disk, and its cluster state lives in
a temporary directory; `redis-cli --cluster create` splits the 16,384 slots between them.
TEST_REDIS_CLUSTER_URL (`redis+cluster://host:port,...`) names a cluster that is already
running instead, and nothing is started or stopped.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MASTERS = 3


@dataclass(frozen=True, slots=True)
class ClusterNodes:
    ports: tuple[int, ...]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port(taken: tuple[int, ...] = ()) -> int:
    """A free port whose cluster bus port (+10000) is free too, and below 65536."""
    while True:
        port = random.randrange(20_000, 50_000)
        if port not in taken and _bindable(port) and _bindable(port + 10_000):
            return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as probe:
            probe.sendall(b"PING\r\n")
            return probe.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _cli(*args: str) -> str:
    binary = shutil.which("redis-cli")
    assert binary, "redis-cli is not installed"
    return subprocess.run(
        [binary, *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


@contextmanager
def private_cluster() -> Iterator[ClusterNodes]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="redis-cluster-") as directory:
        ports: tuple[int, ...] = ()
        for _ in range(MASTERS):
            ports += (free_cluster_port(ports),)
        try:
            for port in ports:
                processes.append(
                    subprocess.Popen(
                        [
                            binary,
                            "--port",
                            str(port),
                            "--bind",
                            "127.0.0.1",
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            str(Path(directory) / f"nodes-{port}.conf"),
                            "--cluster-node-timeout",
                            "5000",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--dir",
                            directory,
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            deadline = time.monotonic() + 10
            while not all(_answers(port) for port in ports):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster's redis-servers did not start")
                time.sleep(0.05)
            _cli(
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            )
            deadline = time.monotonic() + 20
            while not all(
                "cluster_state:ok" in _cli("-p", str(port), "cluster", "info") for port in ports
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not reach cluster_state:ok")
                time.sleep(0.1)
            yield ClusterNodes(ports)
        finally:
            for process in processes:
                process.kill()
            for process in processes:
                process.wait(timeout=10)
