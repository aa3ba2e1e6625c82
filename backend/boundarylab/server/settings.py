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
    worker_heartbeat_timeout: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description="Seconds a worker may send nothing (it sends a heartbeat twice a second) "
        "before it is killed and replaced; its runs end failed.",
    )
    retention_seconds: float = Field(
        3600.0, gt=0, description="How long a finished run is kept before it is forgotten."
    )
    retention_count: int = Field(200, ge=1, description="At most this many finished runs kept.")
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
