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
   with fewer free cores than workers the ratio says so, not the code.

Usage: .venv/bin/python bench/scale.py [--runs 30] [--live 8]
(needs redis-server on the PATH; everything runs on loopback and is stopped at the end)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


async def watch_run(base: str, ws_base: str, config: dict[str, Any]) -> dict[str, float]:
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
    }


def first_frames(base: str, ws_base: str, runs: int) -> list[float]:
    async def all_runs() -> list[float]:
        return [(await watch_run(base, ws_base, SHORT))["first"] for _ in range(runs)]

    return asyncio.run(all_runs())


def frames_per_second(base: str, ws_base: str) -> float:
    seen = asyncio.run(watch_run(base, ws_base, PACED))
    return seen["frames"] / seen["seconds"]


def live_runs(base: str, ws_base: str, count: int) -> tuple[float, float]:
    """(steps/s of all runs together, the slowest run's seconds) for `count` unpaced runs."""

    async def together() -> list[dict[str, float]]:
        runs = (watch_run(base, ws_base, UNPACED) for _ in range(count))
        return list(await asyncio.gather(*runs))

    started = time.perf_counter()
    seen = asyncio.run(together())
    elapsed = time.perf_counter() - started
    total_steps = count * UNPACED["training"]["iterations"]
    return total_steps / elapsed, max(s["seconds"] for s in seen)


@contextmanager
def redis_cluster(tmp: Path, workers: int) -> Iterator[serverproc.ServerProcess]:
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
            yield replica
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs for first-frame latency")
    parser.add_argument("--live", type=int, default=8, help="unpaced runs at once (capacity)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with embedded() as server:
            local = first_frames(server.base, server.ws_base, args.runs)
            local_fps = frames_per_second(server.base, server.ws_base)
        with redis_cluster(Path(tmp), 1) as replica:
            remote = first_frames(replica.base, replica.ws_base, args.runs)
            remote_fps = frames_per_second(replica.base, replica.ws_base)
            one = live_runs(replica.base, replica.ws_base, args.live)
        with redis_cluster(Path(tmp), 2) as replica:
            two = live_runs(replica.base, replica.ws_base, args.live)
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
    for name, (rate, slowest) in (("1 worker", one), ("2 workers", two)):
        print(f"  {name:9s} {rate:9.0f} steps/s together, slowest run {slowest:5.1f} s")
    print(f"  2 workers / 1 worker: {two[0] / one[0]:.2f}x (target >= 1.8)")


if __name__ == "__main__":
    main()
