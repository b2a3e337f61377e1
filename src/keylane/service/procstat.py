"""CPU time of processes and of the machine, read from Linux's ``/proc`` (for benchmarks).

- :func:`process_cpu`: seconds of CPU a process used (all its threads), from
  ``/proc/<pid>/stat`` (``utime + stime``; with ``children=True`` also the CPU of children it
  has reaped, ``cutime + cstime``).
- :func:`tree_cpu`: a server and its live children (PostgreSQL's postmaster and backends):
  the reaped ones are in the parent's ``cutime``, so the sum stays right while backends come
  and go.
- :func:`machine_cpu`: busy and total CPU seconds of the whole machine (``/proc/stat``).
- :func:`find_postmaster`: the PostgreSQL server listening on a port, by its command line.

A process that is gone reads as None. Imports the standard library only.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MachineCpu",
    "children_of",
    "find_postmaster",
    "machine_cpu",
    "process_cpu",
    "read_pid_file",
    "tree_cpu",
]

PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int, *, children: bool = False) -> float | None:
    """CPU seconds ``pid`` has used (user + system), None if it is gone.

    Args:
        pid: the process.
        children: add the CPU of the children it has waited for.
    """
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def tree_cpu(pid: int) -> float | None:
    """CPU seconds of ``pid``, its reaped children and its live children (one level)."""
    total = process_cpu(pid, children=True)
    if total is None:
        return None
    for child in children_of(pid):
        total += process_cpu(child) or 0.0
    return total


@dataclass(frozen=True, slots=True)
class MachineCpu:
    """The machine's CPU counters, seconds summed over every core."""

    busy: float
    total: float


def machine_cpu() -> MachineCpu:
    """Busy (not idle, not waiting for I/O) and total CPU seconds since boot, all cores."""
    first = (PROC / "stat").read_text().splitlines()[0].split()
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest and guest_nice (fields 9 and 10) are already counted in user and nice.
    total = sum(values[:8])
    return MachineCpu(busy=(total - idle) / _TICK, total=total / _TICK)


def read_pid_file(path: Path) -> int | None:
    """The pid in the first line of ``path``, if the file exists and the process lives."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if (PROC / str(pid)).exists() else None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def find_postmaster(port: int) -> int | None:
    """The pid of the PostgreSQL server started with ``-p <port>`` (or the only one), if any.

    A postmaster is a ``postgres`` process whose parent is not a ``postgres`` process.
    """
    servers = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = _cmdline(pid)
        fields = _stat_fields(pid)
        if not argv or fields is None or not argv[0].endswith("postgres"):
            continue
        parent = _cmdline(int(fields[1]))
        if parent and parent[0].endswith("postgres"):
            continue
        servers.append((pid, argv))
    for pid, argv in servers:
        for flag, value in itertools.pairwise(argv):
            if flag == "-p" and value == str(port):
                return pid
    return servers[0][0] if len(servers) == 1 else None
