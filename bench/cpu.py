"""CPU time of process trees, read from /proc (through psutil).

A tree's CPU time is, for every live process in it, its own user + system
time plus what its already reaped children used (`cutime`/`cstime` in
/proc/<pid>/stat). PostgreSQL's postmaster reaps every backend and worker, so
the time of backends and autovacuum workers that exit during a run is still
counted; each process's reaped children are counted once, by their parent.
A process that exits between two readings and is not yet reaped is missed
(at most its last moments: connections here are pooled and persistent).
"""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path

import psutil


def tree_cpu_seconds(pid: int) -> float:
    """User + system seconds of `pid`, its live descendants and their reaped children."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def postmaster_pid(pgdata: Path) -> int:
    """The postmaster's PID: the first line of postmaster.pid in the data directory."""
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, every process), from /proc/stat."""
    times = psutil.cpu_times()
    busy: float = times.user + times.nice + times.system
    for name in ("irq", "softirq", "steal"):
        busy += getattr(times, name, 0.0)
    return busy


def own_cpu_seconds() -> float:
    """This process's user + system seconds (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_seconds() -> float:
    """User + system seconds of this process's reaped children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds used by a set of process trees between start() and stop()."""

    def __init__(self, **trees: int) -> None:
        self.trees = trees
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self.started = {name: tree_cpu_seconds(pid) for name, pid in self.trees.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.seconds = {
            name: tree_cpu_seconds(pid) - self.started[name] for name, pid in self.trees.items()
        }
        return self.seconds
