"""Is a silent worker frozen, or only waiting for a CPU?

Workers train at a high niceness (settings.worker_niceness, 19 by default) so that the web
server stays responsive. On a machine whose cores other work keeps busy, such a worker may
get a few per cent of a core and fall silent past the heartbeat timeout while it is healthy
and runnable. Killing it then would fail every run it holds for no fault of its own. A
frozen worker looks different to the kernel: stopped (SIGSTOP: state T), or asleep on
something that never comes (S, D), or running but burning its CPU without ever reaching a
heartbeat. Only a runnable worker that got little CPU while silent is starved, and only for
a bounded time.

Linux only (it reads /proc); elsewhere `sample` is None and every silent worker is judged
frozen, as before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# While silent, a starved worker got less than this share of one core.
STARVED_CPU_SHARE = 0.25
# A starved worker is spared until its silence reaches this many heartbeat timeouts.
STARVED_LIMIT = 6.0

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcessSample:
    """The kernel's view of a process: its state letter (R runnable, S sleeping, D in
    uninterruptible wait, T stopped, Z zombie) and its CPU seconds (user + system)."""

    state: str
    cpu_s: float


def sample(pid: int, proc: Path = Path("/proc")) -> ProcessSample | None:
    """The process's state and CPU time, or None when they cannot be read (no /proc, or
    the process is gone)."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    return parse_stat(text)


def parse_stat(text: str) -> ProcessSample | None:
    """Read /proc/<pid>/stat: "pid (comm) state ... utime stime ..." where comm may hold
    spaces and parentheses, so fields are counted from the last ')'."""
    _, sep, rest = text.rpartition(")")
    fields = rest.split()
    if not sep or len(fields) < 13:
        return None
    try:
        # After the comm: state is field 3 of the line, utime 14 and stime 15.
        utime, stime = int(fields[11]), int(fields[12])
    except ValueError:
        return None
    return ProcessSample(fields[0], (utime + stime) / _TICKS_PER_S)


def starved(now: ProcessSample | None, cpu_at_last_heard: float | None, silent_s: float,
            timeout_s: float) -> bool:  # fmt: skip
    """True when a worker silent for `silent_s` (past `timeout_s`) is only waiting for a CPU:
    runnable, with less than STARVED_CPU_SHARE of a core used since it was last heard from,
    and silent for less than STARVED_LIMIT timeouts. Unknown (no sample): False."""
    if now is None or cpu_at_last_heard is None or now.state != "R":
        return False
    if silent_s >= STARVED_LIMIT * timeout_s:
        return False
    return now.cpu_s - cpu_at_last_heard < STARVED_CPU_SHARE * silent_s
