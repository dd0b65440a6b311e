"""Memory and CPU time of processes from /proc (Linux), for the benchmarks' per-message figures."""

from __future__ import annotations

import os
from pathlib import Path


def status_kb(pid: int, field_name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(field_name)


def family(pid: int) -> list[int]:
    """``pid`` and every process descended from it (a gateway's worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    family = [pid]
    for member in family:
        family += [child for child, parent in parents.items() if parent == member]
    return family


def cpu_seconds(pid: int, *, system_only: bool = False) -> float:
    """User + system CPU time of a process (and its reaped children) from /proc/<pid>/stat.

    With ``system_only``, the time spent in the kernel on its behalf (system time).
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = fields[12:15:2] if system_only else fields[11:15]  # utime stime cutime cstime
    return sum(int(x) for x in used) / os.sysconf("SC_CLK_TCK")


def context_switches(pid: int) -> int:
    """Context switches of every live thread of ``pid`` (voluntary and not), from /proc.

    A thread that waits (for a lock, a queue, a socket) and is woken costs one; the
    count per message shows how often work is handed between threads.
    """
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            lines = (task / "status").read_text().splitlines()
        except OSError:
            continue  # the thread ended meanwhile
        switches += sum(int(line.split()[1]) for line in lines if "ctxt_switches:" in line)
    return switches
