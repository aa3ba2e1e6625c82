"""Telling a frozen worker from one that only waits for a CPU (server/liveness.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from boundarylab.server.liveness import (
    STARVED_LIMIT,
    ProcessSample,
    parse_stat,
    sample,
    starved,
)

# A /proc/<pid>/stat line whose command name holds spaces and parentheses.
STAT = "4242 (py (x) y) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 0 0"


def test_stat_fields_are_counted_from_the_last_parenthesis() -> None:
    got = parse_stat(STAT)
    assert got is not None
    assert got.state == "R"
    assert got.cpu_s == pytest.approx(300 / os.sysconf("SC_CLK_TCK"))


@pytest.mark.parametrize("text", ["", "4242 (py", "4242 (py) R 1 2", "1 (a) R " + "x " * 20])
def test_unreadable_stat_lines_give_no_sample(text: str) -> None:
    assert parse_stat(text) is None


def test_a_gone_process_gives_no_sample() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    assert sample(child.pid) is None


def test_a_stopped_process_reads_as_stopped_and_a_busy_one_as_runnable() -> None:
    code = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while (s := sample(child.pid)) is not None and s.state != "R":
            assert time.monotonic() < deadline, s
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 30
        while (s := sample(child.pid)) is not None and s.state != "T":
            assert time.monotonic() < deadline, s
            time.sleep(0.05)
        assert s is not None and s.state == "T"
    finally:
        child.kill()
        child.wait(timeout=30)


TIMEOUT = 10.0


@pytest.mark.parametrize(
    ("now", "cpu_before", "silent", "expected", "why"),
    [
        (ProcessSample("R", 1.1), 1.0, 12.0, True, "runnable, 0.1 CPU-s in 12 s: starved"),
        (ProcessSample("T", 1.0), 1.0, 12.0, False, "stopped (SIGSTOP): frozen"),
        (ProcessSample("S", 1.0), 1.0, 12.0, False, "asleep and silent: frozen"),
        (ProcessSample("D", 1.0), 1.0, 12.0, False, "stuck in the kernel: frozen"),
        (ProcessSample("R", 11.0), 1.0, 12.0, False, "computing, never heard: stuck"),
        (ProcessSample("R", 1.0), 1.0, STARVED_LIMIT * TIMEOUT, False, "starved too long"),
        (None, 1.0, 12.0, False, "no /proc: judged as before"),
        (ProcessSample("R", 1.0), None, 12.0, False, "never sampled while heard"),
    ],
)
def test_only_a_runnable_worker_that_got_little_cpu_is_spared(
    now: ProcessSample | None, cpu_before: float | None, silent: float, expected: bool, why: str
) -> None:
    assert starved(now, cpu_before, silent, TIMEOUT) is expected, why


class _Worker:
    """What the watchdog reads of a worker process, and what it does to one."""

    def __init__(self, last_seen: float) -> None:
        self.index, self.pid, self.mode = 0, 4242, "process"
        self.ready, self.condemned, self.jobs = True, False, {}
        self.last_seen = last_seen
        self.killed = False

    def kill(self) -> bool:
        self.killed = True
        return True

    def _detach(self) -> None:
        pass


@pytest.mark.parametrize(("state", "cpu_used", "killed"), [("R", 0.2, False), ("T", 0.0, True),
                                                            ("R", 9.0, True)])  # fmt: skip
def test_the_watchdog_spares_a_starved_worker_and_kills_a_stopped_or_stuck_one(
    monkeypatch: pytest.MonkeyPatch, state: str, cpu_used: float, killed: bool
) -> None:
    from boundarylab.server import watchdog as watchdog_module

    now = time.monotonic()
    worker = _Worker(last_seen=now - 12.0)  # silent past the 10 s timeout
    samples = iter([ProcessSample("R", 5.0), ProcessSample(state, 5.0 + cpu_used)])
    monkeypatch.setattr(watchdog_module.liveness, "sample", lambda pid: next(samples))
    condemned: list[str] = []
    dog = watchdog_module.Watchdog(
        {0: worker},  # type: ignore[dict-item]
        lambda w, reason: condemned.append(reason),
        lambda: None,
        heartbeat_timeout=10.0,
    )
    dog.stop()  # one round by hand, no timer
    dog.round()  # samples the CPU when last heard from, then judges against a second sample
    assert worker.killed is killed
    assert bool(condemned) is killed
