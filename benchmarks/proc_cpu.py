"""Server CPU time read from /proc: what a process and its descendants have used so far.

`cpu_seconds(pid)` sums utime + stime (fields 14 and 15 of /proc/<pid>/stat, in clock
ticks) over the process and every live descendant. The kernel counts all threads of a
process in its own stat line, including threads that have already exited, so gRPC's
poller threads and a Go runtime's threads are included; descendants cover a server that
runs worker processes. Read before and after a measured window: the difference divided
by the calls completed in it is the server's CPU per call, which is steadier than
requests per second on a shared machine (it does not count the time the server waited
for a core).
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    text = (PROC / str(pid) / "stat").read_text("ascii", errors="replace")
    return text[text.rindex(")") + 2 :].split()


def process_ticks(pid: int) -> int:
    """User plus system time of one process (all its threads), in clock ticks."""
    fields = _stat_fields(pid)
    # After the name: state is field 3 of the man page, so utime (14) is index 11 here.
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (from every thread's children list)."""
    found: list[int] = []
    for task in (PROC / str(pid) / "task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text("ascii").split()]
        except OSError:  # the thread ended meanwhile
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        try:
            pending += children(current)
        except OSError:  # it ended meanwhile
            continue
    return tree


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by `pid` and its live descendants."""
    ticks = 0
    for member in process_tree(pid):
        try:
            ticks += process_ticks(member)
        except OSError:  # a descendant ended between listing and reading
            continue
    return ticks / TICKS_PER_SECOND
