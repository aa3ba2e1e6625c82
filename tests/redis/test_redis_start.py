"""Redis mode's edges at start: Redis unreachable means one clear line and exit status 2
within seconds (never a hang), and the embedded default never imports redis."""

from __future__ import annotations

import subprocess
import sys

import pytest
from redis_support import CLI

from serverproc import free_port, server_env


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_redis_unreachable_at_start_is_one_line_and_exit_2(command: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = server_env(redis_url=url, port=free_port())
    # Bounded: connecting gives up after a few seconds (redis_keys.CONNECT_TIMEOUT_S).
    done = subprocess.run([*CLI, command], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"boundarylab {command}: cannot reach Redis at {url}")


def test_a_worker_without_redis_url_says_so() -> None:
    done = subprocess.run([*CLI, "worker"], env=server_env(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "BOUNDARYLAB_REDIS_URL is not set" in done.stderr


def test_a_password_in_the_url_is_not_printed() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    done = subprocess.run([*CLI, "worker"], env=server_env(redis_url=url), capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "hunter2" not in done.stderr and "***@" in done.stderr


def test_the_embedded_server_does_not_import_redis() -> None:
    code = "import sys, boundarylab.server.app; print('redis' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env=server_env(), capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    assert done.stdout.strip() == "False"


def test_a_replica_whose_redis_stops_answering_refuses_with_unavailable() -> None:
    """Requests that need Redis get errors.Unavailable (HTTP 503 with the reason), not a 500."""
    import asyncio

    from boundarylab.engine.config import RunConfig
    from boundarylab.server.app import HTTP_STATUS
    from boundarylab.server.errors import Unavailable
    from boundarylab.server.redis_service import RedisRunService
    from boundarylab.server.settings import Settings

    service = RedisRunService(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))

    async def scenario() -> list[BaseException]:
        attempts = [service.find("some-run"), service.create(RunConfig(), "203.0.113.1", "{}")]
        return await asyncio.gather(*attempts, return_exceptions=True)  # type: ignore[arg-type]

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
    assert all("Redis does not answer" in o.message for o in outcomes)  # type: ignore[attr-defined]
    assert HTTP_STATUS[Unavailable] == 503
