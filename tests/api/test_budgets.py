"""Every run is bounded in time: runs that cannot fit the server's bounds are refused at
submit with a 422 that names the field and says why (issue 11, finding 2)."""

from __future__ import annotations

import time

from api_support import make_client


def _errors(response) -> dict[tuple, str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}


def test_a_run_paced_to_last_for_ages_is_refused_naming_the_pace() -> None:
    with make_client(max_run_seconds=600) as client:
        slow = {"training": {"iterations": 200, "steps_per_second": 0.000001}}
        errors = _errors(client.post("/api/runs", json=slow))
        message = errors[("body", "training", "steps_per_second")]
        assert "600 s" in message and "steps/s" in message
        fits = {"training": {"iterations": 200, "steps_per_second": 1}}
        assert client.post("/api/runs", json=fits).status_code == 201


def test_the_most_expensive_corner_of_the_schema_is_refused_up_front() -> None:
    corner = {
        "dataset": {"n_samples": 5000},
        "model": {"hidden_sizes": [256] * 6},
        "training": {"iterations": 200_000},
        "view": {"resolution": 300, "max_fps": 60},
    }
    with make_client() as client:
        errors = _errors(client.post("/api/runs", json=corner))
        assert "CPU-seconds" in errors[("body", "training", "iterations")]
        assert "resolution" in errors[("body", "view", "resolution")]
        assert client.get("/api/health").json()["runs"]["running"] == 0


def _wait_end(client, run_id: str, timeout: float = 30.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = client.get(f"/api/runs/{run_id}").json()
        if detail["status"] in ("completed", "cancelled", "failed", "diverged"):
            return dict(detail)
        time.sleep(0.05)
    raise AssertionError("the run was never released")


def test_a_paused_run_is_released_after_the_pause_timeout_with_a_message() -> None:
    with make_client(pause_timeout_seconds=1.0) as client:
        body = {"training": {"iterations": 20_000, "steps_per_second": 100}}
        run_id = client.post("/api/runs", json=body).json()["id"]
        assert client.post(f"/api/runs/{run_id}/pause").json()["status"] == "paused"
        detail = _wait_end(client, run_id)
        assert detail["status"] == "cancelled" and "paused" in detail["message"]


def test_a_run_past_its_wall_time_or_cpu_budget_is_cancelled_with_a_message() -> None:
    body = {"training": {"iterations": 200_000}}  # ~3 s of CPU: unpaced, so not refused
    with make_client(max_run_seconds=0.5) as client:
        run_id = client.post("/api/runs", json=body).json()["id"]
        detail = _wait_end(client, run_id)
        assert detail["status"] == "cancelled" and "at most 0.5 s" in detail["message"]
    # Estimated at ~0.3 CPU-s (frames not counted), so admitted; it takes more than that.
    costly = {"training": {"iterations": 30_000}, "view": {"resolution": 200, "max_fps": 60}}
    with make_client(max_run_cpu_seconds=0.35) as client:
        response = client.post("/api/runs", json=costly)
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]
        detail = _wait_end(client, run_id)
        assert detail["status"] == "cancelled" and "CPU-seconds" in detail["message"]
