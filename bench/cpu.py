"""CPU time of the server's process tree, PostgreSQL and Redis, from /proc."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
# --------------------------------------------------------------------------- CPU accounting


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(comm, ppid, utime+stime ticks) of a live process, or None if it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()  # fields[0] is field 3 ("state")
    return comm, int(fields[1]), int(fields[11]) + int(fields[12])


def _all_stats() -> dict[int, tuple[str, int, int]]:
    stats: dict[int, tuple[str, int, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    return stats


@dataclass(frozen=True)
class CpuSnapshot:
    server: dict[int, int]  # uvicorn master and all descendants: pid -> ticks
    postgres: dict[int, int]
    redis: dict[int, int]


def cpu_snapshot(root_pid: int) -> CpuSnapshot:
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    tree: dict[int, int] = {}
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        if pid in stats and pid not in tree:
            tree[pid] = stats[pid][2]
            pending.extend(children.get(pid, []))

    def by_comm(name: str) -> dict[int, int]:
        return {pid: ticks for pid, (comm, _, ticks) in stats.items() if comm == name}

    return CpuSnapshot(server=tree, postgres=by_comm("postgres"), redis=by_comm("redis-server"))


def cpu_delta_ms(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU used between two snapshots by the processes alive at the second one."""
    ticks = sum(value - before.get(pid, 0) for pid, value in after.items())
    return ticks * 1000.0 / CLK_TCK
