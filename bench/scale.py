"""Redis mode against the embedded server (issue 17's targets, README "Redis mode").

1. First frame: a short run (the article's run, 2000 steps) is POSTed and watched at once,
   `--runs` times one after another; the latency is POST -> the first message that carries a
   boundary frame (a `boundary` message, or a snapshot with one). Printed: p50 and p99 for
   the embedded server (one `boundarylab serve`, one worker process) and through Redis (one
   replica, one `boundarylab worker`), and their ratio (target: Redis p50 <= 2x embedded).
   Also frames/s per viewer over a paced run (pace 2000, 10000 steps) in each mode.
2. Capacity: `--live` unpaced runs (10000 steps each, as fast as they go) at once through
   Redis with 1 and then 2 workers; printed: the steps/s all runs made together and the
   slowest run's seconds, with the ratio of the two workers' total to one's (target >= 1.8:
   a worker trains on one core, so two should hold nearly twice the live runs). On a machine
   with fewer free cores than workers the ratio says so, not the code: so each capacity run
   also prints the CPU-seconds each process took while it ran (workers, the replica, Redis,
   this benchmark's own viewers), how many runs each worker trained, and the load average.

Usage: .venv/bin/python bench/scale.py [--runs 30] [--live 8]
(needs redis-server on the PATH; everything runs on loopback and is stopped at the end)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

import serverproc

CLI = [sys.executable, "-m", "boundarylab.cli"]
SHORT = {"training": {"iterations": 2000}}
PACED = {"training": {"iterations": 10000, "steps_per_second": 2000}}
UNPACED = {"training": {"iterations": 10000}}
TERMINAL = {"completed", "cancelled", "diverged", "failed"}
SETTINGS = {**serverproc.ONE_ADDRESS_MANY_PEOPLE, "worker_processes": 1}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Cluster:
    """Redis mode's processes, for their CPU-seconds and the runs' owners."""

    replica: serverproc.ServerProcess
    redis: serverproc.RedisServer
    workers: list[subprocess.Popen[bytes]]

    def pids(self) -> dict[str, int]:
        named = {f"worker {i + 1}": w.pid for i, w in enumerate(self.workers)}
        return {**named, "replica": self.replica.proc.pid, "redis": self.redis.proc.pid}


def cpu_seconds(pid: int) -> float:
    """User + system CPU-seconds a process has taken (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def watch_run(base: str, ws_base: str, config: dict[str, Any]) -> dict[str, Any]:
    """POST a run and watch it to the end: first-frame latency, frames, seconds."""
    async with httpx.AsyncClient(timeout=60) as client:
        posted = time.perf_counter()
        run_id = (await client.post(f"{base}/api/runs", json=config)).json()["id"]
    first: float | None = None
    frames = 0
    async with connect(f"{ws_base}/api/runs/{run_id}/stream", max_size=None) as ws:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 120))
            kind = message["type"]
            has_frame = kind == "boundary" or (kind == "snapshot" and message.get("boundary"))
            if has_frame:
                frames += 1
                first = first if first is not None else time.perf_counter() - posted
            if kind in ("status", "snapshot") and message.get("status") in TERMINAL:
                break
    seconds = time.perf_counter() - posted
    return {
        "first": first if first is not None else float("nan"),
        "frames": frames,
        "seconds": seconds,
        "id": run_id,
    }


def first_frames(base: str, ws_base: str, runs: int) -> list[float]:
    async def all_runs() -> list[float]:
        return [(await watch_run(base, ws_base, SHORT))["first"] for _ in range(runs)]

    return asyncio.run(all_runs())


def frames_per_second(base: str, ws_base: str) -> float:
    seen = asyncio.run(watch_run(base, ws_base, PACED))
    return seen["frames"] / seen["seconds"]


@dataclass
class Capacity:
    rate: float  # steps/s of all runs together
    slowest: float  # the slowest run's seconds
    cpu: dict[str, float]  # CPU-seconds each process took meanwhile (and these viewers)
    owners: list[int]  # runs each worker trained
    load: float  # the 1-minute load average at the end


def live_runs(cluster: Cluster, count: int) -> Capacity:
    """`count` unpaced runs at once, watched to the end, through `cluster`."""
    base, ws_base = cluster.replica.base, cluster.replica.ws_base

    async def together() -> list[dict[str, Any]]:
        runs = (watch_run(base, ws_base, UNPACED) for _ in range(count))
        return list(await asyncio.gather(*runs))

    pids = cluster.pids()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    before["viewers (bench)"] = own_cpu_seconds()
    started = time.perf_counter()
    seen = asyncio.run(together())
    elapsed = time.perf_counter() - started
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    cpu["viewers (bench)"] = own_cpu_seconds() - before["viewers (bench)"]
    owner = Counter(cluster.redis.cli("hget", f"bl:run:{s['id']}", "owner") for s in seen)
    total_steps = count * UNPACED["training"]["iterations"]
    return Capacity(total_steps / elapsed, max(s["seconds"] for s in seen), cpu,
                    sorted(owner.values(), reverse=True), os.getloadavg()[0])  # fmt: skip


@contextmanager
def redis_cluster(tmp: Path, workers: int) -> Iterator[Cluster]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench/scale.py needs redis-server on the PATH (apt-get install redis-server)")
    redis = serverproc.launch_redis(binary, tmp)
    env = serverproc.server_env(redis_url=f"redis://127.0.0.1:{redis.port}/0", **SETTINGS)
    procs = [
        subprocess.Popen(
            [*CLI, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    try:
        with serverproc.running_server(
            [*CLI, "serve", "--port", "{port}", "--log-level", "warning"],
            env=env,
            workers_ready=workers,
            timeout=180,
        ) as replica:
            yield Cluster(replica, redis, procs)
    finally:
        for proc in [*procs, redis.proc]:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def embedded() -> Iterator[serverproc.ServerProcess]:
    argv = [*CLI, "serve", "--port", "{port}", "--log-level", "warning"]
    env = serverproc.server_env(**SETTINGS)
    with serverproc.running_server(argv, env=env, workers_ready=1, timeout=180) as server:
        yield server


def workers_cpu(got: Capacity) -> float:
    return sum(seconds for who, seconds in got.cpu.items() if who.startswith("worker"))


def print_bounds(one: Capacity, two: Capacity, live: int) -> None:
    """What bounds the 2-worker ratio here: the CPU a second worker costs per step, and the
    cores two workers can have at most beside the replica, Redis (and these viewers)."""
    steps = live * UNPACED["training"]["iterations"]
    per_cpu = [steps / workers_cpu(got) for got in (one, two)]
    print(
        f"  steps per worker CPU-second: 1 worker {per_cpu[0]:.0f}, 2 workers {per_cpu[1]:.0f} "
        f"({per_cpu[1] / per_cpu[0]:.2f}x: what a second worker costs in CPU, not in time)"
    )
    cores = os.cpu_count() or 1
    for label, others in (
        ("replica + Redis + viewers", ("replica", "redis", "viewers (bench)")),
        ("replica + Redis", ("replica", "redis")),
    ):
        overhead = sum(two.cpu[who] for who in others) / workers_cpu(two)
        fit = cores / (1 + overhead)  # worker cores W with W * (1 + overhead) = all cores
        print(
            f"  {label} took {overhead:.2f} CPU-s per worker CPU-s: on {cores} idle cores two "
            f"workers get at most {min(2.0, fit):.2f} cores, a ratio of at most "
            f"{min(2.0, fit) / min(1.0, fit):.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs for first-frame latency")
    parser.add_argument("--live", type=int, default=8, help="unpaced runs at once (capacity)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with embedded() as server:
            local = first_frames(server.base, server.ws_base, args.runs)
            local_fps = frames_per_second(server.base, server.ws_base)
        with redis_cluster(Path(tmp), 1) as cluster:
            replica = cluster.replica
            remote = first_frames(replica.base, replica.ws_base, args.runs)
            remote_fps = frames_per_second(replica.base, replica.ws_base)
            one = live_runs(cluster, args.live)
        with redis_cluster(Path(tmp), 2) as cluster:
            two = live_runs(cluster, args.live)
    ms = 1000.0
    print(
        f"first frame, {args.runs} runs of {SHORT['training']['iterations']} steps, "
        "POST -> first boundary frame:"
    )
    for name, values in (("embedded", local), ("redis", remote)):
        print(
            f"  {name:9s} p50 {percentile(values, 0.5) * ms:7.1f} ms   "
            f"p99 {percentile(values, 0.99) * ms:7.1f} ms"
        )
    ratio = statistics.median(remote) / statistics.median(local)
    print(f"  redis / embedded p50: {ratio:.2f}x (target <= 2)")
    print(f"frames/s per viewer, paced run: embedded {local_fps:.1f}, redis {remote_fps:.1f}")
    print(f"capacity, {args.live} unpaced runs of 10000 steps at once, through Redis:")
    for name, got in (("1 worker", one), ("2 workers", two)):
        print(f"  {name:9s} {got.rate:9.0f} steps/s together, slowest run {got.slowest:5.1f} s, "
              f"runs per worker {got.owners}, load average {got.load:.1f}")  # fmt: skip
        took = ", ".join(f"{who} {seconds:.1f}" for who, seconds in got.cpu.items())
        print(f"            CPU-seconds meanwhile: {took} (all: {sum(got.cpu.values()):.1f})")
    print(f"  2 workers / 1 worker: {two.rate / one.rate:.2f}x (target >= 1.8)")
    print_bounds(one, two, args.live)


if __name__ == "__main__":
    main()
