"""Deployment settings, read from the environment with the prefix ``BOUNDARYLAB_``.

These are the server's limits and knobs; the per-run knobs live in config.RunConfig.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from boundarylab.engine import config as schema


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOUNDARYLAB_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind; the container sets 0.0.0.0.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Log level of the server."
    )
    max_running: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=256,
        description="Runs training at once (default: the CPU count).",
    )
    workers: Literal["process", "thread"] = Field(
        "process",
        description="Where runs train: a pool of max_running worker processes (keeps the "
        "event loop responsive), or threads (no multiprocessing; for tests).",
    )
    max_queued: int = Field(64, ge=0, le=10_000, description="Runs waiting; beyond this, 429.")
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
        description="Extra origins allowed to open the WebSocket besides the serving host.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
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
    debug_routes: bool = Field(
        False, description="Serve GET /api/debug/loop-lag and its reset (for bench/)."
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if host != "*" and "*" in host.removeprefix("*."):
                raise ValueError(f'{host!r}: a wildcard must be "*" or lead like "*.example.org"')
        return hosts


@lru_cache
def get_settings() -> Settings:
    return Settings()
