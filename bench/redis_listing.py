"""What GET /api/runs costs a Redis-mode replica (RedisRunService.list_runs), against the
embedded server's listing, side by side in one process.

`--runs` finished runs of one client, each with `--entries` progress entries (the article's
run reports 201), are written to a redis-server of this script's own as a worker writes
them (ADMIT, then APPEND). Then a replica that has never seen them lists them (cold: each
run loaded from Redis, one MULTI and its log replayed into the mirror), lists them again
`--repeat` times (warm: the ids from Redis, the runs from its mirror), and the embedded
server's listing (RunService.list_runs: its memory) runs over the same runs. Printed: wall
ms and this process's CPU ms of each (Redis works in its own process), and the ratios.

Usage: .venv/bin/python bench/redis_listing.py [--runs 200] [--entries 201] [--repeat 5]
(needs redis-server on the PATH; it runs on loopback and is stopped at the end)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import serverproc
from boundarylab.engine.config import RunConfig
from boundarylab.server.messages import encode
from boundarylab.server.redis_keys import message_entry
from boundarylab.server.redis_service import RedisRunService
from boundarylab.server.service import RunService
from boundarylab.server.settings import Settings

CLIENT = "198.51.100.1"


async def write_runs(settings: Settings, runs: int, entries: int) -> None:
    """`runs` finished runs of CLIENT in Redis, as a replica admits and a worker writes."""
    writer = RedisRunService(settings)
    await writer.start()
    try:
        scripts = writer.scheduler.scripts
        for _ in range(runs):
            run = await writer.create(RunConfig(), CLIENT, "{}")
            pipe = writer.scheduler.client.pipeline(transaction=False)
            await scripts.append(run.id, CLIENT, '{"e":"started"}', pipe=pipe)
            for k in range(entries):
                message = {"type": "progress", "iteration": 100 * k, "loss": 1 / (1 + k),
                           "train_accuracy": 0.5 + k / (4 * entries)}  # fmt: skip
                await scripts.append(run.id, CLIENT, message_entry(encode(message)), pipe=pipe)
            done = json.dumps({"e": "done", "status": "completed"})
            await scripts.append(run.id, CLIENT, done, final=True, pipe=pipe)
            await pipe.execute()
    finally:
        await writer.shutdown(2.0)


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, float, int]:
    """(wall ms, CPU ms of this process, summaries) of one listing and its summaries."""
    wall, cpu = time.perf_counter(), time.process_time()
    summaries = [run.summary() for run in await call()]
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3, len(summaries)


async def measure(settings: Settings, repeat: int) -> dict[str, tuple[float, float, int]]:
    replica = RedisRunService(settings)
    await replica.start()
    try:
        results = {"cold (Redis, first listing)": await timed(lambda: replica.list_runs(CLIENT))}
        warm = [await timed(lambda: replica.list_runs(CLIENT)) for _ in range(repeat)]
        embedded = [await timed(lambda: RunService.list_runs(replica, CLIENT))
                    for _ in range(repeat)]  # fmt: skip
        for name, samples in (("warm (Redis ids, mirror)", warm), ("embedded", embedded)):
            results[name] = (statistics.median(s[0] for s in samples),
                             statistics.median(s[1] for s in samples), samples[0][2])  # fmt: skip
        return results
    finally:
        await replica.shutdown(2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--entries", type=int, default=201)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on the PATH (apt-get install redis-server)")
    with tempfile.TemporaryDirectory() as tmp:
        redis = serverproc.launch_redis(binary, Path(tmp))
        try:
            limit = args.runs + 10
            settings = Settings(redis_url=redis.url, retention_count=limit,
                                max_runs_per_client=limit, max_queued=limit)  # fmt: skip
            asyncio.run(write_runs(settings, args.runs, args.entries))
            results = asyncio.run(measure(settings, args.repeat))
        finally:
            redis.proc.terminate()
            redis.proc.wait(10)
    print(f"GET /api/runs of {args.runs} finished runs x {args.entries} entries "
          f"(load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    base_wall, base_cpu, _ = results["embedded"]
    for name, (wall, cpu, listed) in results.items():
        ratios = f"{wall / base_wall:6.1f}x / {cpu / max(base_cpu, 1e-3):6.1f}x embedded"
        print(f"  {name:30s} {listed:4d} runs  wall {wall:8.1f} ms  CPU {cpu:8.1f} ms  "
              f"({ratios})")  # fmt: skip


if __name__ == "__main__":
    main()
