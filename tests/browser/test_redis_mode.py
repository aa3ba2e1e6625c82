"""A few of the page's tests against a Redis-mode server (conftest.redis_mode: a replica, a
`boundarylab worker` process and a redis-server), as a person uses it: the article's run to
the end, pause / step / resume, and the comparison (seven runs, queued through Redis).

Each calls the embedded server's own test with the Redis-mode page, so both modes are held
to the same checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import test_compare
import test_page
import test_run_status

pytestmark = pytest.mark.browser


def test_it_is_redis_mode(desk_redis: Any) -> None:
    workers = desk_redis.api("/api/health")["workers"]
    assert workers["mode"] == "redis" and workers["ready"] == 1


def test_the_default_run_to_the_end(desk_redis: Any, tmp_path: Path) -> None:
    test_page.test_default_run_completes_and_shows_the_servers_final_loss(desk_redis, tmp_path)
    listed = desk_redis.api("/api/runs")  # the run, listed from Redis
    assert [run["status"] for run in listed][-1] == "completed"


def test_pause_step_and_resume(desk_redis: Any) -> None:
    test_page.test_pause_really_stops_the_iteration_counter(desk_redis)


def test_the_paused_status_follows_each_step(desk_redis: Any) -> None:
    test_run_status.test_paused_status_follows_each_step(desk_redis)


def test_the_comparison(desk_redis: Any, tmp_path: Path) -> None:
    test_compare.test_comparison_draws_seven_live_plots(desk_redis, tmp_path)
