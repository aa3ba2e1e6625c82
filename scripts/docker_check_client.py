"""The checks of scripts/docker_check.sh that go through the container's published port.

The page, the vendored plotly.js, the health route, and one short run with the default
configuration followed over the WebSocket to its end, as a browser would see them. Prints
one PASS/FAIL line a check and exits 1 if any failed. Runs with the project's own virtualenv
(httpx and websockets come with `pip install -e '.[test]'`).

    python scripts/docker_check_client.py http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from websockets.sync.client import connect

TERMINAL = {"completed", "cancelled", "diverged", "failed"}
HTTP_TIMEOUT_S = 10.0


class CheckFailed(Exception):
    """A check's verdict, with the reason in words (not `assert`, which -O would drop)."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def get(base: str, path: str) -> httpx.Response:
    response = httpx.get(base + path, timeout=HTTP_TIMEOUT_S)
    require(response.status_code == 200, f"GET {path} answered {response.status_code}")
    return response


def check_page(base: str, _args: argparse.Namespace) -> str:
    response = get(base, "/")
    kind = response.headers.get("content-type", "")
    require(kind.startswith("text/html"), f"content-type {kind!r}, not HTML")
    require("<html" in response.text.lower(), "the body is not an HTML page")
    return f"{len(response.content)} bytes of HTML"


def check_plotly(base: str, _args: argparse.Namespace) -> str:
    response = get(base, "/vendor/plotly.min.js")
    kind = response.headers.get("content-type", "")
    require("javascript" in kind, f"content-type {kind!r}, not JavaScript")
    # The real bundle is several MB; a stub or an error page would be tiny.
    require(len(response.content) > 1_000_000, f"only {len(response.content)} bytes")
    return f"{len(response.content) / 2**20:.1f} MiB of JavaScript"


def check_health(base: str, _args: argparse.Namespace) -> str:
    body = get(base, "/api/health").json()
    require(body.get("status") == "ok", f"health says {body}")
    return f"status ok, version {body.get('version')}, workers {body.get('workers')}"


def frame_iteration(frame: dict, where: str) -> int:
    """A boundary frame's iteration, after checking its data is the grid it announces."""
    grid = frame["grid"]
    cells = int(grid["nx"]) * int(grid["ny"])
    data = base64.b64decode(frame["data"])
    per_cell = {"p1-uint8-base64": 1, "class-conf-uint8-base64": 2}.get(frame["encoding"])
    require(per_cell is not None, f"{where}: unknown encoding {frame['encoding']!r}")
    require(len(data) == per_cell * cells, f"{where}: {len(data)} bytes for {cells} cells")
    return int(frame["iteration"])


@dataclass
class StreamSeen:
    """What a run's stream delivered up to its final status."""

    status: str | None = None
    live_frames: list[int] = field(default_factory=list)  # iterations of boundary messages
    snapshot_frame: int | None = None  # the snapshot's boundary frame's iteration, if any
    last_progress: dict | None = None


def follow_stream(ws_url: str, deadline: float, timeout: float) -> StreamSeen:
    """Read a run's socket until a final status (or fail at `deadline`)."""
    seen = StreamSeen()
    with connect(ws_url, open_timeout=HTTP_TIMEOUT_S, max_size=None) as ws:
        while seen.status not in TERMINAL:
            remaining = deadline - time.monotonic()
            require(remaining > 0, f"no final status within {timeout} s (last: {seen.status})")
            try:
                message = json.loads(ws.recv(timeout=remaining))
            except TimeoutError:
                raise CheckFailed(f"no final status within {timeout} s") from None
            kind = message["type"]
            if kind == "snapshot":
                # A short run can end before the socket joins: then the snapshot carries the
                # final status and the last frame, and the server closes the stream after it.
                seen.status = message["status"]
                if message.get("boundary"):
                    seen.snapshot_frame = frame_iteration(message["boundary"], "snapshot")
                if message.get("history"):
                    seen.last_progress = message["history"][-1]
            elif kind == "boundary":
                seen.live_frames.append(frame_iteration(message, "boundary message"))
            elif kind == "progress":
                seen.last_progress = message
            elif kind == "status":
                seen.status = message["status"]
    return seen


def check_run(base: str, args: argparse.Namespace) -> str:
    started = time.monotonic()
    config = {"training": {"iterations": args.iterations}}  # otherwise the defaults
    response = httpx.post(f"{base}/api/runs", json=config, timeout=HTTP_TIMEOUT_S)
    require(response.status_code == 201, f"POST /api/runs answered {response.status_code}")
    run = response.json()
    ws_url = base.replace("http", "ws", 1) + run["stream"]
    seen = follow_stream(ws_url, started + args.timeout, args.timeout)
    status, live_frames = seen.status, seen.live_frames
    snapshot_frame, last_progress = seen.snapshot_frame, seen.last_progress
    require(status == "completed", f"the run ended {status!r}")
    frames = [*([snapshot_frame] if snapshot_frame is not None else []), *live_frames]
    require(bool(frames), "no boundary frame arrived, live or in the snapshot")
    require(
        max(frames) == args.iterations,
        f"last boundary frame at iteration {max(frames)}, not {args.iterations}",
    )
    require(
        last_progress is not None and last_progress["iteration"] == args.iterations,
        f"last progress {last_progress}",
    )
    summary = httpx.get(f"{base}/api/runs/{run['id']}", timeout=HTTP_TIMEOUT_S).json()
    require(summary["status"] == "completed", f"GET /api/runs/{{id}} says {summary['status']!r}")
    return (
        f"{args.iterations} iterations completed in {time.monotonic() - started:.1f} s, "
        f"loss {last_progress['loss']:.4f}, {len(live_frames)} live boundary frame(s)"
        f"{', final frame in the snapshot' if snapshot_frame is not None else ''}"
    )


CHECKS: list[tuple[str, Callable[[str, argparse.Namespace], str]]] = [
    ("page / is HTML", check_page),
    ("/vendor/plotly.min.js is served", check_plotly),
    ("/api/health", check_health),
    ("a default run streams to completion over the WebSocket", check_run),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", help="the published address, e.g. http://127.0.0.1:8000")
    parser.add_argument("--iterations", type=int, default=2000, help="length of the run")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the run")
    args = parser.parse_args(argv)
    base = args.base_url.rstrip("/")
    failed = 0
    for name, check in CHECKS:
        try:
            detail = check(base, args)
        except Exception as exc:  # any error is that check's failure; the others still run
            print(f"FAIL: {name}: {type(exc).__name__}: {exc}", flush=True)
            failed += 1
        else:
            print(f"PASS: {name}: {detail}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
