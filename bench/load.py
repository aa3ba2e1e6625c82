"""Load test: a real server on loopback, N clients creating runs and watching them live.

Each client, until the time is up, either creates a run (while fewer than --runs are active)
and watches it, or joins a random active run as a viewer. Some viewers (--churn) drop their
socket mid-run and reconnect a moment later, as students closing and reopening a tab do. A
run is *lost* unless every client that watched it saw its final status, and that status is
the one the server reports. After the time is up no new run is created; active runs finish
(--grace bounds it), then the server's memory is measured again ~5 s later.

Prints: runs started / completed / rejected (429) / lost, frames delivered per second, time
to first frame p50/p99 (POST -> first boundary at its creator, queueing included; and join
-> first frame for viewers), the server's event-loop lag p99 (its own 10 ms ticker), server
memory (RSS of the server and its worker processes) at start, peak and end, and PASS/FAIL
against the targets (README "Benchmarks"): 50 viewers and 8 concurrent runs with zero lost
runs, lag p99 <= 50 ms, memory back within 10 % of its start.

Usage: .venv/bin/python bench/load.py [--clients 50] [--runs 8] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from subprocess import Popen
from typing import Any

import httpx
import numpy as np
import psutil
from websockets.asyncio.client import connect

from serverproc import ONE_ADDRESS_MANY_PEOPLE, start_server

TERMINAL = {"completed", "cancelled", "diverged", "failed"}
LAG_TARGET_MS = 50.0
MEMORY_TOLERANCE = 0.10


def start_load_server(max_running: int, retention: int | None) -> tuple[Popen[bytes], str]:
    """The server under load (process workers); `retention` bounds the finished runs kept."""
    # All the bench's clients share one address: the per-address caps are for people.
    settings: dict[str, object] = {"max_running": max_running, "log_level": "warning",
                                   "debug_routes": True, **ONE_ADDRESS_MANY_PEOPLE}  # fmt: skip
    if retention is not None:
        settings["retention_count"] = retention
    ready = min(max_running, os.cpu_count() or 1)  # workers each interleave many runs
    server = start_server(settings=settings, workers_ready=ready, timeout=90.0)
    return server.proc, server.base


def server_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes, summed over the server process and all its worker processes.

    The check uses PSS: workers fork from one preloaded process and share its pages, which a
    plain RSS sum counts once per worker, hiding real growth behind shared libraries.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    rss = pss = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
    return rss, pss


@dataclass
class Tally:
    """What the clients observed."""

    started: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    frames: int = 0
    first_frame_s: list[float] = field(default_factory=list)
    join_frame_s: list[float] = field(default_factory=list)
    reconnects: int = 0
    # run id -> the final status each watching client saw (None: it never saw one)
    seen_end: dict[str, list[str | None]] = field(default_factory=lambda: defaultdict(list))
    viewers_now: int = 0
    viewers_peak: int = 0
    runs_peak: int = 0


class Load:
    """N clients against one server; everything on one asyncio loop in this process."""

    def __init__(self, base: str, args: argparse.Namespace) -> None:
        self.base = base
        self.ws_base = base.replace("http://", "ws://")
        self.args = args
        self.rng = random.Random(args.seed)
        self.tally = Tally()
        self.active: set[str] = set()
        self.reserved = 0  # creations in flight, so clients do not overshoot --runs
        self.http = httpx.AsyncClient(base_url=base, timeout=30)
        self.config = {"training": {"iterations": args.iterations}}

    async def create(self) -> tuple[str | None, float]:
        """POST a run; (id or None when refused, the time the POST started)."""
        self.reserved += 1
        t0 = time.perf_counter()
        try:
            response = await self.http.post("/api/runs", json=self.config)
        finally:
            self.reserved -= 1
        if response.status_code == 429:
            self.tally.rejected += 1
            return None, t0
        if response.status_code != 201:
            self.tally.errors.append(f"POST {response.status_code}: {response.text[:200]}")
            return None, t0
        run_id = str(response.json()["id"])
        self.tally.started += 1
        self.active.add(run_id)
        self.tally.runs_peak = max(self.tally.runs_peak, len(self.active))
        return run_id, t0

    async def session(
        self, run_id: str, t0: float, first_frame: list[float] | None, drop_after: float | None
    ) -> tuple[str | None, bool]:
        """One WebSocket connection: (final status or None, whether it dropped on purpose).

        `first_frame`: where to record seconds from `t0` to the first frame, if wanted.
        """
        got_frame = first_frame is None
        stop_at = None if drop_after is None else time.monotonic() + drop_after
        async with connect(f"{self.ws_base}/api/runs/{run_id}/stream", max_size=None) as ws:
            self.tally.viewers_now += 1
            self.tally.viewers_peak = max(self.tally.viewers_peak, self.tally.viewers_now)
            try:
                while True:
                    wait = 30.0 if stop_at is None else stop_at - time.monotonic()
                    if wait <= 0:
                        return None, True
                    try:
                        text = await asyncio.wait_for(ws.recv(), wait)
                    except TimeoutError:
                        if stop_at is not None:
                            return None, True
                        raise
                    message = json.loads(text)
                    kind = message.get("type")
                    if kind == "boundary" or (kind == "snapshot" and message.get("boundary")):
                        self.tally.frames += 1
                        if not got_frame and first_frame is not None:
                            got_frame = True
                            first_frame.append(time.perf_counter() - t0)
                    if kind in ("status", "snapshot") and message.get("status") in TERMINAL:
                        return str(message["status"]), False
            finally:
                self.tally.viewers_now -= 1

    async def watch(self, run_id: str, t0: float | None) -> None:
        """Watch a run to its end, dropping and reconnecting at random (--churn)."""
        final: str | None = None
        start = t0 if t0 is not None else time.perf_counter()
        record: list[float] | None = self.tally.first_frame_s if t0 else self.tally.join_frame_s
        try:
            while final is None:
                drop = self.rng.uniform(0.05, 1.5) if self.rng.random() < self.args.churn else None
                final, dropped = await self.session(run_id, start, record, drop)
                record = None  # only the first connection's first frame is timed
                if final is None and not dropped:
                    break  # the server closed the socket without a final status
                if dropped:
                    self.tally.reconnects += 1
                    await asyncio.sleep(self.rng.uniform(0.0, 0.3))
        except Exception as exc:  # a viewer that fails is a finding, not a crash of the bench
            self.tally.errors.append(f"watch {run_id}: {type(exc).__name__}: {exc}")
        finally:  # also when cut off after the grace period: that run then counts as lost
            self.tally.seen_end[run_id].append(final)
            if final is not None:
                self.active.discard(run_id)

    async def client(self, deadline: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, 1.0))  # do not all arrive in one tick
        while time.monotonic() < deadline:
            if len(self.active) + self.reserved < self.args.runs:
                run_id, t0 = await self.create()
                if run_id is None:
                    await asyncio.sleep(1.0)
                    continue
                await self.watch(run_id, t0)
            elif self.active:
                await self.watch(self.rng.choice(sorted(self.active)), None)
            else:
                await asyncio.sleep(0.05)

    async def verify(self) -> tuple[int, int, dict[str, int]]:
        """(lost, completed, final statuses): checked against the server's own record."""
        lost, completed, statuses = 0, 0, defaultdict(int)
        for run_id, finals in self.tally.seen_end.items():
            response = await self.http.get(f"/api/runs/{run_id}")
            status = response.json().get("status") if response.status_code == 200 else None
            statuses[str(status)] += 1
            completed += status == "completed"
            if status not in TERMINAL or any(f != status for f in finals):
                lost += 1
        return lost, completed, dict(statuses)


async def sample_memory(pid: int, samples: list[tuple[int, int]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(server_memory(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def warm_up(base: str, n_runs: int) -> None:
    """One short run per worker, watched to its end: every worker has imported and allocated
    what a run needs, so the start figure is a server that has worked, not a cold one."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def one() -> None:
            config = {"training": {"iterations": 2000}}
            run_id = (await http.post("/api/runs", json=config)).json()["id"]
            async with connect(f"{base.replace('http', 'ws')}/api/runs/{run_id}/stream") as ws:
                async for text in ws:
                    if json.loads(text).get("status") in TERMINAL:
                        break

        await asyncio.gather(*(one() for _ in range(n_runs)))


async def drive(proc: subprocess.Popen[bytes], base: str, args: argparse.Namespace) -> dict:
    await warm_up(base, args.max_running)
    await asyncio.sleep(2.0)
    mem_start = server_memory(proc.pid)
    load = Load(base, args)
    await load.http.post("/api/debug/loop-lag/reset")
    samples: list[tuple[int, int]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(proc.pid, samples, stop))
    t_start = time.monotonic()
    deadline = t_start + args.seconds
    clients = [asyncio.create_task(load.client(deadline)) for _ in range(args.clients)]
    _, pending = await asyncio.wait(clients, timeout=args.seconds + args.grace)
    for task in pending:  # past the grace period: whatever they watch counts as lost
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    elapsed = time.monotonic() - t_start
    lag = (await load.http.get("/api/debug/loop-lag")).json()
    stop.set()
    await sampler
    await asyncio.sleep(args.settle)
    mem_end = server_memory(proc.pid)
    lost, completed, statuses = await load.verify()
    held = len((await load.http.get("/api/runs")).json())
    await load.http.aclose()
    t = load.tally
    peak = max(samples, default=mem_start, key=lambda m: m[1])
    return {
        "tally": t, "elapsed": elapsed, "lag": lag, "lost": lost, "completed": completed,
        "statuses": statuses, "mem": (mem_start, peak, mem_end), "cut_off": len(pending),
        "children": len(psutil.Process(proc.pid).children(recursive=True)), "held": held,
    }  # fmt: skip


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def report(r: dict[str, Any], args: argparse.Namespace) -> bool:
    t: Tally = r["tally"]
    (rss0, start), (rss1, peak), (rss2, end) = ((a / 2**20, b / 2**20) for a, b in r["mem"])
    growth = (end - start) / start
    print(f"clients {args.clients}, target runs at once {args.runs}, {args.seconds:.0f} s "
          f"(+ up to {args.grace:.0f} s to finish), {args.iterations} steps per run, "
          f"churn {args.churn:.0%}, server max_running {args.max_running}")  # fmt: skip
    print(f"load phase + finish       {r['elapsed']:.1f} s")
    print(f"runs started              {t.started}")
    print(f"runs completed            {r['completed']}   (final statuses {r['statuses']})")
    print(f"runs rejected (429)       {t.rejected}")
    print(f"runs lost                 {r['lost']}")
    print(f"peak viewers / runs       {t.viewers_peak} sockets / {t.runs_peak} runs active")
    print(f"reconnects                {t.reconnects}")
    print(f"frames delivered          {t.frames / r['elapsed']:.0f} per second ({t.frames})")
    print(f"first frame after POST    p50 {pct(t.first_frame_s, 50):.0f} ms, "
          f"p99 {pct(t.first_frame_s, 99):.0f} ms  (queueing included)")  # fmt: skip
    print(f"first frame after join    p50 {pct(t.join_frame_s, 50):.0f} ms, "
          f"p99 {pct(t.join_frame_s, 99):.0f} ms")  # fmt: skip
    lag = r["lag"]
    print(f"event-loop lag            p50 {lag['p50_ms']:.1f} ms, p99 {lag['p99_ms']:.1f} ms, "
          f"max {lag['max_ms']:.1f} ms ({lag['samples']} ticks)")  # fmt: skip
    print(f"server memory, PSS        start {start:.1f} MiB, peak {peak:.1f} MiB, "
          f"end {end:.1f} MiB ({growth:+.1%}, {args.settle:.0f} s after the load; "
          f"server + {r['children']} child processes)")  # fmt: skip
    print(f"server memory, RSS sum    start {rss0:.1f} MiB, peak {rss1:.1f} MiB, "
          f"end {rss2:.1f} MiB (shared pages counted once per process)")  # fmt: skip
    print(f"finished runs held        {r['held']} (each keeps its history, dataset and last "
          "frame as JSON text: ~40 KB; --retention bounds them)")  # fmt: skip
    for error in t.errors[:10]:
        print(f"  error: {error}")
    checks = [
        (f">= {args.clients} viewers at once", t.viewers_peak >= args.clients),
        (f">= {args.runs} runs at once", t.runs_peak >= args.runs),
        ("zero lost runs", r["lost"] == 0 and r["cut_off"] == 0 and not t.errors),
        (f"event-loop lag p99 <= {LAG_TARGET_MS:.0f} ms", lag["p99_ms"] <= LAG_TARGET_MS),
        ("memory within 10% of start", abs(growth) <= MEMORY_TOLERANCE),
    ]
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return all(ok for _, ok in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (viewers)")
    parser.add_argument("--runs", type=int, default=8, help="runs kept active at once")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load phase")
    parser.add_argument("--grace", type=float, default=60.0, help="most time to finish runs")
    parser.add_argument("--settle", type=float, default=5.0, help="wait before the end RSS")
    parser.add_argument("--iterations", type=int, default=20000, help="steps per run")
    parser.add_argument("--churn", type=float, default=0.25, help="share of drop+reconnect")
    parser.add_argument("--max-running", type=int, default=8, help="server runs at once")
    parser.add_argument(
        "--retention", type=int, default=None, help="finished runs kept (server default 200)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    proc, base = start_load_server(args.max_running, args.retention)
    try:
        result = asyncio.run(drive(proc, base, args))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    sys.exit(0 if report(result, args) else 1)


if __name__ == "__main__":
    main()
