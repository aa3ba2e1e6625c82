"""Deployment settings, read from the environment with the prefix ``BOUNDARYLAB_``.

These are the server's limits and knobs; the per-run knobs live in config.RunConfig.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from typing import Literal, get_args, get_origin

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from boundarylab.engine import config as schema

PREFIX = "BOUNDARYLAB_"

# The longest one own point [x1, x2, label] can be in a JSON body as browsers (JSON.stringify)
# and Python (json.dumps, with its ", " separators) write numbers, in their shortest
# round-trip form: a coordinate at most 24 characters ("-2.2250738585072014e-308"), a label
# 1, "[", "]" and two ", " 6, and ", " before the next point 2: 57 bytes.
BYTES_PER_POINT = 57
# Routes whose body may carry own points (dataset.points): they alone get the larger cap.
DATA_ROUTES = frozenset(
    {("POST", "/api/runs"), ("POST", "/api/datasets/preview"), ("POST", "/api/datasets/csv")}
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind; the container sets 0.0.0.0.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Log level of the server."
    )
    max_running: int = Field(
        default_factory=lambda: 32 * (os.cpu_count() or 1),
        ge=1,
        le=4096,
        description="At most this many runs training at once over all workers (default: 32 "
        "per CPU). Below that, a new run starts while the workers have CPU headroom for it "
        "and waits in the queue while they have not.",
    )
    worker_processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=256,
        description="Worker processes (default: the CPU count, never more than max_running). "
        "Each interleaves many runs.",
    )
    cpu_calibration: Literal["auto"] | float = Field(
        "auto",
        json_schema_extra={"allowed": '"auto" or a number above 0'},
        description="How many times slower than the reference machine of the server's "
        "capacity estimates this machine trains and draws frames: admission and the queue's "
        "expected waits scale their estimates by it. auto: measured when the server (or a "
        "Redis-mode worker) starts (~60 ms of the engine); a number pins it (2: twice as "
        "slow). Checks at submit "
        "(the 422s for a run too long or too costly) keep the reference figures, so a "
        "config is accepted alike on every machine.",
    )
    workers: Literal["process", "thread"] = Field(
        "process",
        description="Where runs train: worker processes (keeps the event loop responsive), "
        "or threads (no multiprocessing; for tests).",
    )
    max_queued: int = Field(500, ge=0, le=10_000, description="Runs waiting; beyond this, 429.")
    max_run_seconds: float = Field(
        3600.0,
        gt=0,
        description="Longest a run may last, wall time: a paced run that would take longer "
        "is refused at submit (422); a run still going then is cancelled with a message.",
    )
    max_run_cpu_seconds: float = Field(
        600.0,
        gt=0,
        description="CPU seconds one run may use: a run estimated to need more is refused "
        "at submit (422); one that uses more is cancelled with a message.",
    )
    max_frame_seconds: float = Field(
        1.0, gt=0, description="A run whose boundary frame would take longer is refused (422)."
    )
    pause_timeout_seconds: float = Field(
        900.0,
        gt=0,
        description="A run paused this long is released: it ends cancelled, with a message.",
    )
    worker_niceness: int = Field(
        19,
        ge=0,
        le=19,
        description="Niceness of the worker processes: at 19 the server's event loop gets a "
        "core as soon as it wakes, but other work on the machine at 0 takes nearly all the CPU "
        "from training; 0 shares the cores evenly with that work.",
    )
    worker_heartbeat_timeout: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description="Seconds a worker may send nothing (it sends a heartbeat twice a second), "
        "or keep a run it was told to cancel, before it is killed and replaced; its runs end "
        "failed. A silent worker only waiting for a CPU (a busy machine) is spared up to six "
        "times this long.",
    )
    retention_seconds: float = Field(
        3600.0, gt=0, description="How long a finished run is kept before it is forgotten."
    )
    retention_count: int = Field(200, ge=1, description="At most this many finished runs kept.")
    retention_bytes: int = Field(
        256 * 2**20,
        ge=2**20,
        description="At most this many bytes of finished runs kept (history, points, "
        "latest frame, weights), the oldest forgotten first.",
    )
    max_body_bytes: int = Field(65536, ge=1024, description="Largest request body accepted.")
    max_ws_message_bytes: int = Field(4096, ge=64, description="Largest WebSocket message.")
    max_viewers_per_run: int = Field(100, ge=1, description="WebSocket viewers of one run.")
    max_runs_per_client: int = Field(
        16, ge=1, description="Queued or running runs one client address may hold at once."
    )
    max_samples: int = Field(schema.MAX_SAMPLES, ge=2, le=schema.MAX_SAMPLES)
    max_iterations: int = Field(schema.MAX_ITERATIONS, ge=1, le=schema.MAX_ITERATIONS)
    allowed_origins: list[str] = Field(
        default_factory=list,
        examples=[["http://192.168.1.20:8000"]],
        description="Extra origins allowed to open the WebSocket besides the serving host.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
        examples=[["192.168.1.20", "lab.example.org"]],
        description="Host names the server answers to (the Host header; the guard against "
        "DNS rebinding). The loopback names and the hosts of allowed_origins are always "
        'accepted; "*.example.org" matches subdomains; ["*"] accepts any name.',
    )
    forwarded_allow_ips: list[str] = Field(
        default_factory=list,
        description="Addresses of reverse proxies whose X-Forwarded-For/-Proto headers are "
        "trusted (uvicorn's forwarded_allow_ips). Empty: a client is its peer address.",
    )
    list_all_runs: bool = Field(
        False,
        description="GET /api/runs lists every run held; off: only the caller's own runs "
        "(those its address created).",
    )
    max_viewers_per_address: int = Field(
        4, ge=1, description="WebSocket viewers of one run from one client address."
    )
    max_ws_connections: int = Field(500, ge=1, description="WebSocket connections in all.")
    max_ws_per_address: int = Field(
        40, ge=1, description="WebSocket connections from one client address."
    )
    viewer_stall_seconds: float = Field(
        10.0,
        gt=0,
        description="A viewer whose socket takes no data for this long (it does not read) "
        "is cut off.",
    )
    ws_frames_per_second: float = Field(
        20.0, gt=0, description="Frames (messages, pings) a WebSocket client may send a second."
    )
    ws_send_buffer_bytes: int = Field(
        128 * 1024,
        ge=16384,
        le=4 * 2**20,
        description="Kernel send buffer of one WebSocket connection (Linux doubles it): what a "
        "viewer that does not read can hold in the kernel until it is cut off.",
    )
    ws_deflate: Literal["shared", "per_viewer", "off"] = Field(
        "shared",
        description="WebSocket compression (permessage-deflate): shared compresses each "
        "message once for every viewer; per_viewer is uvicorn's own (each message compressed "
        "again for each viewer, kept for comparison: bench/ws_deflate.py); off.",
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a connection has to send its request headers."
    )
    keep_alive_seconds: float = Field(5.0, gt=0, description="Idle keep-alive connection life.")
    max_header_bytes: int = Field(
        16384, ge=4096, description="Largest request line plus headers of one request."
    )
    limit_concurrency: int = Field(
        800,
        ge=10,
        description="Connections and tasks at once; beyond, new requests get 503 (keep it "
        "under the process's open-file limit).",
    )
    redis_url: str = Field(
        "",
        examples=["redis://redis:6379/0"],
        description="Redis mode: run state, the job queue, commands and every run's messages "
        "live in this Redis; web replicas hold no runs and `boundarylab worker` processes "
        "train them. Empty: one process with its own worker pool, no Redis.",
    )
    debug_routes: bool = Field(
        False, description="Serve GET /api/debug/loop-lag and its reset (for bench/)."
    )

    def limits(self) -> schema.Limits:
        """The run limits this deployment sets, as the schema's validation context takes them."""
        return schema.Limits(max_samples=self.max_samples, max_iterations=self.max_iterations)

    @property
    def max_data_body_bytes(self) -> int:
        """Largest body of a route that takes own points: room for max_samples points of
        the longest form, on top of the ordinary cap for everything else in the config
        (5000 points: 65536 + 5000 × 57 = 350536 bytes)."""
        return self.max_body_bytes + self.max_samples * BYTES_PER_POINT

    @field_validator("cpu_calibration")
    @classmethod
    def _positive_calibration(cls, value: str | float) -> str | float:
        if value != "auto" and not (isinstance(value, float) and 0 < value < float("inf")):
            raise ValueError("must be a finite number above 0")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if host != "*" and "*" in host.removeprefix("*."):
                raise ValueError(f'{host!r}: a wildcard must be "*" or lead like "*.example.org"')
        return hosts


class SettingsInvalid(ValueError):
    """A BOUNDARYLAB_* variable the server cannot use: one line per bad variable, naming it,
    its value and what it may be (what `boundarylab serve` prints instead of a traceback)."""


def _allowed(name: str) -> str:
    """What a setting may be, in words, from its declared type and bounds."""
    info = Settings.model_fields[name]
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("allowed"), str):
        return str(extra["allowed"])
    bounds = {k: getattr(m, k) for m in info.metadata for k in ("ge", "gt", "le") if hasattr(m, k)}
    if get_origin(info.annotation) is Literal:
        return "one of " + ", ".join(map(str, get_args(info.annotation)))
    if info.annotation is bool:
        return "true or false"
    if get_origin(info.annotation) is list:
        example = json.dumps(info.examples[0]) if info.examples else '["…"]'
        return f"a JSON list of strings, e.g. '{example}'"
    kind = "an integer" if info.annotation is int else "a number"
    if "ge" in bounds and "le" in bounds:
        return f"{kind} from {bounds['ge']} to {bounds['le']}"
    if "ge" in bounds:
        return f"{kind} of at least {bounds['ge']}"
    if "gt" in bounds:
        return f"{kind} above {bounds['gt']}"
    return kind


def _problem(name: str, why: str) -> str:
    variable = f"{PREFIX}{name.upper()}"
    value = next((v for k, v in os.environ.items() if k.upper() == variable), None)
    return f"{variable}={value!r}: {why}; allowed: {_allowed(name)}"


def load_settings() -> Settings:
    """Settings from the environment; SettingsInvalid (one line per bad variable) when a
    variable's value cannot be used."""
    try:
        return Settings()
    except ValidationError as exc:
        why: dict[str, list[str]] = {}  # variable -> its errors (one per branch of a union)
        for e in exc.errors():
            why.setdefault(str(e["loc"][0]), []).append(e["msg"].removeprefix("Value error, "))
        lines = [_problem(name, msgs[0] if len(msgs) == 1 else "not a value it takes")
                 for name, msgs in why.items()]  # fmt: skip
    except SettingsError as exc:  # a list variable that is not JSON (pydantic-settings)
        named = re.search(r'field "(\w+)"', str(exc))
        if named is None or named.group(1) not in Settings.model_fields:
            raise
        lines = [_problem(named.group(1), "not a JSON list")]
    raise SettingsInvalid("\n".join(lines))


@lru_cache
def get_settings() -> Settings:
    return load_settings()
