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

    @property
    def max_data_body_bytes(self) -> int:
        """Largest body of a route that takes own points: room for max_samples points of
        the longest form, on top of the ordinary cap for everything else in the config
        (5000 points: 65536 + 5000 × 57 = 350536 bytes)."""
        return self.max_body_bytes + self.max_samples * BYTES_PER_POINT

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
