"""WebSocket compression side by side (issue 11, finding 16): 100 viewers of one run at
resolution 300 and 60 fps, with the server's `ws_deflate` set to each of
  per_viewer  uvicorn's own permessage-deflate: each message compressed again per viewer
  shared      compressed once for every viewer (server/deflate.py)
  off         no compression
Each mode runs `--repeats` times, interleaved, on a fresh server. Reported per mode: the
server's event-loop lag p99 (its own 10 ms ticker), /api/health p99, viewers that saw the
run's end, and loopback bytes sent during the run (every viewer's frames; the machine's
loopback, so other traffic on it counts too).

Usage: .venv/bin/python bench/ws_deflate.py [--viewers 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import connect

import serverproc

RUN = {
    "training": {"iterations": 6000, "report_every": 100, "steps_per_second": 600},
    "view": {"resolution": 300, "max_fps": 60},
}
MODES = ("per_viewer", "shared", "off")
TERMINAL = {"completed", "cancelled", "diverged", "failed"}


async def viewer(url: str, joined: asyncio.Event) -> str | None:
    """Follow the stream to the run's end; its final status (None: it never came)."""
    async with connect(url, max_size=2**23, open_timeout=30) as ws:
        joined.set()
        async for text in ws:
            message = json.loads(text)
            if message["type"] in ("status", "snapshot") and message["status"] in TERMINAL:
                return str(message["status"])
    return None


async def one(base: str, viewers: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        created = await client.post(f"{base}/api/runs", json=RUN)
        created.raise_for_status()
        url = base.replace("http", "ws") + f"/api/runs/{created.json()['id']}/stream"
        joins = [asyncio.Event() for _ in range(viewers)]
        tasks = [asyncio.create_task(viewer(url, j)) for j in joins]
        await asyncio.wait_for(asyncio.gather(*(j.wait() for j in joins)), 60)
        await client.post(f"{base}/api/debug/loop-lag/reset")
        sent_before = psutil.net_io_counters(pernic=True)["lo"].bytes_sent
        probes: list[float] = []

        async def probe() -> None:
            while True:
                started = time.perf_counter()
                await client.get(f"{base}/api/health")
                probes.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.05)

        prober = asyncio.create_task(probe())
        finals = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 300)
        prober.cancel()
        lag = (await client.get(f"{base}/api/debug/loop-lag")).json()
    sent = psutil.net_io_counters(pernic=True)["lo"].bytes_sent - sent_before
    probes.sort()
    return {
        "lag_p99": float(lag["p99_ms"]),
        "health_p99": probes[int(0.99 * (len(probes) - 1))] if probes else float("nan"),
        "ended": sum(1 for f in finals if f == "completed"),
        "sent_mb": sent / 2**20,
    }


def run_mode(mode: str, viewers: int) -> dict[str, Any]:
    settings = {"ws_deflate": mode, "debug_routes": True, "log_level": "warning",
                "max_viewers_per_run": viewers, **serverproc.ONE_ADDRESS_MANY_PEOPLE}  # fmt: skip
    server = serverproc.start_server(settings=settings, workers_ready=1)
    try:
        return asyncio.run(one(server.base, viewers))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.viewers} viewers of one run at resolution 300, 60 fps")
    print("load average before:", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            results[mode].append(run_mode(mode, args.viewers))
            print(mode, results[mode][-1], flush=True)
    print(f"\n{'ws_deflate':12} {'lag p99 ms':>14} {'health p99 ms':>14} {'saw the end':>12} "
          f"{'loopback MiB':>13}")  # fmt: skip
    for mode, runs in results.items():
        lag = statistics.median(r["lag_p99"] for r in runs)
        health = statistics.median(r["health_p99"] for r in runs)
        ended = min(r["ended"] for r in runs)
        sent = statistics.median(r["sent_mb"] for r in runs)
        print(f"{mode:12} {lag:14.1f} {health:14.1f} {ended:>8}/{args.viewers} {sent:13.0f}")
    print("(medians of", args.repeats, "runs each; lag: the server's own 10 ms ticker)")
    print("load average after:", " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
