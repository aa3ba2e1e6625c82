"""The stream and the run service with fake runs: fan-out, late join, control, limits, faults."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from api_support import (
    FakeRun,
    Watched,
    is_terminal,
    make_client,
    read_until,
    strict_loads,
    watch,
    worker_threads,
)
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from modes import ClientFactory

# A run that only moves when told: 1 report per second, far more steps than a test waits for.
SLOW = {"training": {"iterations": 20_000, "report_every": 1, "steps_per_second": 1.0}}


def _start(client: TestClient, body: dict[str, Any] = SLOW) -> str:
    response = client.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _server_tasks(client: TestClient) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    return client.portal.call(count)  # type: ignore[union-attr]


def test_snapshot_then_progress_frames_and_final_status(any_client: TestClient) -> None:
    run_id = _start(any_client, {"training": {"iterations": 1000, "steps_per_second": 200.0}})
    with any_client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        seen = watch(ws.receive_text)
    snapshot = seen.snapshot
    assert snapshot["id"] == run_id
    assert {"config", "status", "dataset", "history", "boundary", "iteration"} <= set(snapshot)
    assert len(snapshot["dataset"]["train"]["x"]) == 300
    steps = [entry["iteration"] for entry in seen.progress]
    assert steps == list(range(0, 1001, 100))  # nothing lost, nothing twice
    assert seen.frame is not None and seen.frame["iteration"] == 1000
    # The end is a status message, or the snapshot itself when the run ended before the
    # socket joined (a busy machine can take longer than the run's 5 s to open it).
    assert seen.end["status"] == "completed"
    if seen.end["type"] == "status":
        assert seen.end == {"type": "status", "status": "completed"}


def test_late_joiner_and_two_viewers_see_the_same_end(any_client: TestClient) -> None:
    run_id = _start(any_client, {"training": {"iterations": 600, "steps_per_second": 100.0}})

    # Six reports 10 ms apart: on a busy machine the run may be over before either socket
    # joins, so each viewer is read the way the page reads it (snapshot, then live).
    def past_200(m: dict) -> bool:
        return is_terminal(m) or (m.get("type") == "boundary" and m["iteration"] >= 200)

    with any_client.websocket_connect(f"/api/runs/{run_id}/stream") as first:
        head = watch(first.receive_text, until=past_200)
        with any_client.websocket_connect(f"/api/runs/{run_id}/stream") as second:
            late = watch(second.receive_text)
            ended = is_terminal(head.messages[-1])
            rest = [] if ended else read_until(first, is_terminal)
    whole_first = Watched(head.messages + rest)
    assert [h["iteration"] for h in late.snapshot["history"]][:3] == [0, 100, 200]
    assert late.snapshot["boundary"]["iteration"] >= 200
    final_frame = whole_first.frame
    assert final_frame is not None and final_frame["iteration"] == 600
    assert final_frame == late.frame
    assert [e["iteration"] for e in whole_first.progress] == list(range(0, 601, 100))
    # Reconnecting after the end: the snapshot alone carries everything.
    with any_client.websocket_connect(f"/api/runs/{run_id}/stream") as again:
        final = strict_loads(again.receive_text())
    assert final["status"] == "completed" and final["boundary"] == final_frame
    assert [h["iteration"] for h in final["history"]] == list(range(0, 601, 100))


def test_control_over_rest(any_client: TestClient) -> None:
    run_id = _start(any_client)
    base = f"/api/runs/{run_id}"
    assert any_client.post(f"{base}/step").status_code == 409  # only while paused
    assert any_client.post(f"{base}/pause").json()["status"] == "paused"
    assert any_client.post(f"{base}/pause").json()["status"] == "paused"  # idempotent
    before = any_client.get(base).json()["iteration"]
    stepped = any_client.post(f"{base}/step").json()
    assert stepped["status"] == "paused" and stepped["iteration"] == before + 1
    assert any_client.post(f"{base}/resume").json()["status"] == "running"
    cancelled = any_client.post(f"{base}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert any_client.post(f"{base}/cancel").json()["status"] == "cancelled"
    assert any_client.post(f"{base}/step").status_code == 409


def test_control_over_the_socket(any_client: TestClient) -> None:
    run_id = _start(any_client)
    with any_client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        assert strict_loads(ws.receive_text())["type"] == "snapshot"
        ws.send_json({"action": "step"})
        assert "paused" in read_until(ws, lambda m: m["type"] == "error")[-1]["message"]
        ws.send_json({"action": "pause"})
        read_until(ws, lambda m: m.get("status") == "paused")
        ws.send_json({"action": "step"})
        stepped = read_until(ws, lambda m: m["type"] == "progress")[-1]
        ws.send_json({"action": "resume"})
        read_until(ws, lambda m: m.get("status") == "running")
        ws.send_json({"action": "cancel"})
        end = read_until(ws, is_terminal)[-1]
    assert stepped["iteration"] >= 1 and end["status"] == "cancelled" and end["message"]
    assert any_client.get(f"/api/runs/{run_id}").json()["status"] == "cancelled"


def test_bad_socket_messages_get_errors_and_the_run_goes_on(any_client: TestClient) -> None:
    run_id = _start(any_client)
    with any_client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        ws.receive_text()
        for text in ["not json", '{"action": "explode"}', "[1, 2]", '{"action": NaN}']:
            ws.send_text(text)
            error = read_until(ws, lambda m: m["type"] == "error")[-1]
            assert error["message"]
        ws.send_text('{"action": "' + "x" * 5000 + '"}')
        with pytest.raises(WebSocketDisconnect) as too_big:
            read_until(ws, lambda m: False)
        assert too_big.value.code == 1009
    with any_client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        ws.receive_text()
        ws.send_bytes(b"\x00\x01")
        with pytest.raises(WebSocketDisconnect) as binary:
            read_until(ws, lambda m: False)
        assert binary.value.code == 1003 and binary.value.reason
    assert any_client.get(f"/api/runs/{run_id}").json()["status"] == "running"


def test_origin_check_and_unknown_run_on_the_socket(any_client: TestClient) -> None:
    run_id = _start(any_client)
    url = f"/api/runs/{run_id}/stream"
    with any_client.websocket_connect(url, headers={"origin": "http://testserver"}) as ws:
        assert strict_loads(ws.receive_text())["type"] == "snapshot"
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        any_client.websocket_connect(url, headers={"origin": "http://evil.example"}) as ws,
    ):
        ws.receive_text()
    assert refused.value.code == 1008 and "evil.example" in refused.value.reason
    with any_client.websocket_connect("/api/runs/nope/stream") as ws:
        assert strict_loads(ws.receive_text())["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as unknown:
            ws.receive_text()
    assert unknown.value.code == 4404


def test_allowed_origins_setting(mode_client: ClientFactory) -> None:
    with mode_client(FakeRun, allowed_origins=["http://ui.example:3000"]) as client:
        url = f"/api/runs/{_start(client)}/stream"
        with client.websocket_connect(url, headers={"origin": "http://ui.example:3000"}) as ws:
            assert strict_loads(ws.receive_text())["type"] == "snapshot"


def test_too_many_viewers_is_1013(mode_client: ClientFactory) -> None:
    with mode_client(FakeRun, max_viewers_per_run=2) as client:
        url = f"/api/runs/{_start(client)}/stream"
        with client.websocket_connect(url) as a, client.websocket_connect(url) as b:
            a.receive_text(), b.receive_text()
            with pytest.raises(WebSocketDisconnect) as full, client.websocket_connect(url) as c:
                c.receive_text()
            assert full.value.code == 1013 and "too many viewers" in full.value.reason


def test_a_viewer_that_leaves_leaves_nothing_behind(fake_client: TestClient) -> None:
    run_id = _start(fake_client, {"training": {"iterations": 100_000, "steps_per_second": 50.0}})
    # Counted once the run's own thread is there: "running" is said when the run is sent to
    # a worker, and a busy machine may start its thread later (a busy round saw it appear
    # after the count and blamed on the viewers).
    run_thread = f"boundarylab-run-{run_id[:8]}"
    for _ in range(6000):
        if run_thread in worker_threads():
            break
        time.sleep(0.01)
    assert run_thread in worker_threads(), "the run never started its thread"
    tasks_before = _server_tasks(fake_client)
    threads_before = worker_threads()
    for _ in range(3):
        with fake_client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
            read_until(ws, lambda m: m.get("type") == "progress")
    feed = fake_client.app.state.service.feed  # type: ignore[attr-defined]
    for _ in range(200):  # the server notices the close asynchronously
        settled = _server_tasks(fake_client) <= tasks_before and worker_threads() <= threads_before
        if not feed.viewers(run_id) and settled:
            break
        fake_client.portal.call(asyncio.sleep, 0.01)  # type: ignore[union-attr]
    assert not feed.viewers(run_id)
    assert _server_tasks(fake_client) <= tasks_before
    assert worker_threads() <= threads_before  # none new (one from before may have ended)
    assert fake_client.get(f"/api/runs/{run_id}").json()["status"] == "running"


def _until(client: TestClient, path: str, predicate: Any, timeout: float = 60.0) -> dict:
    """GET `path` until its JSON satisfies `predicate` (bounded): in Redis mode a replica
    polls the counts every half second and a worker takes a job a moment after it is
    queued; the embedded server answers at once."""
    deadline = time.monotonic() + timeout
    while not predicate(answer := client.get(path).json()):
        assert time.monotonic() < deadline, answer
        time.sleep(0.02)
    return answer


def test_queue_positions_then_429_when_full(mode_client: ClientFactory) -> None:
    with mode_client(FakeRun, max_running=1, max_queued=2) as client:
        running = _start(client)
        _until(client, f"/api/runs/{running}", lambda r: r["status"] == "running")
        first, second = _start(client), _start(client)
        assert client.get(f"/api/runs/{first}").json()["position"] == 1
        assert client.get(f"/api/runs/{second}").json()["position"] == 2
        full = client.post("/api/runs", json=SLOW)
        assert full.status_code == 429 and int(full.headers["retry-after"]) > 0
        assert "full" in full.json()["detail"]
        with client.websocket_connect(f"/api/runs/{second}/stream") as ws:
            snapshot = strict_loads(ws.receive_text())
            assert snapshot["status"] == "queued" and snapshot["position"] == 2
            client.post(f"/api/runs/{first}/cancel")  # leaves the queue: second moves up
            moved = read_until(ws, lambda m: m.get("type") == "status")[-1]
            wait = moved.pop("expected_wait_s")  # how long until it starts: see capacity.py
            assert moved == {"type": "status", "status": "queued", "position": 1}
            assert isinstance(wait, int | float) and wait >= 0
            client.post(f"/api/runs/{running}/cancel")
            read_until(ws, lambda m: m.get("status") == "running")
        idle = {"running": 1, "queued": 0}
        _until(client, "/api/health", lambda health: health["runs"] == idle)


def test_runs_per_client_limit_is_429(mode_client: ClientFactory) -> None:
    with mode_client(FakeRun, max_runs_per_client=2, max_running=4) as client:
        _start(client), _start(client)
        refused = client.post("/api/runs", json=SLOW)
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert "this client" in refused.json()["detail"]


def test_a_failing_worker_run_is_failed_and_others_continue(any_client: TestClient) -> None:
    healthy = _start(any_client)
    broken = _start(any_client, {"training": {"iterations": 100, "seed": 13}})
    with any_client.websocket_connect(f"/api/runs/{broken}/stream") as ws:
        end = read_until(ws, is_terminal)[-1]
    assert end["status"] == "failed" and "injected fault" in end["message"]
    after = _start(any_client, {"training": {"iterations": 200}})
    with any_client.websocket_connect(f"/api/runs/{after}/stream") as ws:
        assert read_until(ws, is_terminal)[-1]["status"] == "completed"
    assert any_client.get(f"/api/runs/{healthy}").json()["status"] == "running"


def test_finished_runs_are_forgotten_after_the_retention_count(
    mode_client: ClientFactory,
) -> None:
    """In Redis mode the budget is counted in Redis, over every replica: a replica that no
    longer holds the oldest run cannot load it back either."""
    with mode_client(FakeRun, retention_count=2) as client:
        ids = []
        for _ in range(3):
            ids.append(_start(client, {"training": {"iterations": 100}}))
            with client.websocket_connect(f"/api/runs/{ids[-1]}/stream") as ws:
                read_until(ws, is_terminal)
        client.get("/api/runs")
        assert client.get(f"/api/runs/{ids[0]}").status_code == 404
        assert client.get(f"/api/runs/{ids[2]}").status_code == 200


def test_shutdown_cancels_runs_and_stops_every_worker_thread() -> None:
    with make_client(FakeRun) as client:
        run_id = _start(client)
        service = client.app.state.service  # type: ignore[attr-defined]
        assert worker_threads()
    assert service.get(run_id).status == "cancelled"
    assert not worker_threads()


def test_finished_runs_are_forgotten_after_the_retention_time() -> None:
    with make_client(FakeRun, retention_seconds=0.2) as client:
        run_id = _start(client, {"training": {"iterations": 300, "steps_per_second": 5.0}})
        with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
            assert read_until(ws, is_terminal)[-1]["status"] == "completed"
        for _ in range(200):  # bounded wait: kept for 0.2 s after the end, then forgotten
            if client.get(f"/api/runs/{run_id}").status_code == 404:
                break
            client.portal.call(asyncio.sleep, 0.05)  # type: ignore[union-attr]
        assert client.get(f"/api/runs/{run_id}").status_code == 404
        assert client.get("/api/runs").json() == []


def test_a_flood_of_control_messages_is_rate_limited_not_queued(any_client: TestClient) -> None:
    # The flood arrives within one instant of the limit's clock: on a busy machine (and
    # through Redis) the 60 commands can take longer than the second the limit counts over,
    # and then none is one too many and the error this test waits for never comes.
    service = any_client.app.state.service  # type: ignore[attr-defined]
    service.command_rate.clock = lambda: 1000.0
    run_id = _start(any_client)
    with any_client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        ws.receive_text()
        for _ in range(30):
            ws.send_json({"action": "pause"})
            ws.send_json({"action": "resume"})
        errors = read_until(ws, lambda m: m["type"] == "error" and "too many" in m["message"])
        assert errors
    statuses = [any_client.get(f"/api/runs/{run_id}/model").status_code for _ in range(40)]
    assert 429 in statuses and set(statuses) <= {200, 429}
    assert any_client.post(f"/api/runs/{run_id}/cancel").status_code in (200, 429)
