"""Hostile WebSocket messages: each gets an error message or a close with a reason code, and
neither the run nor the server notices.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from reliability_support import control, is_terminal, read_until, strict_loads
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from serverproc import ServerProcess

# Paced to last minutes: a test must never assume a run is still live when its socket joins,
# and these send to a live run's socket. Each test ends its run with a cancel.
LONG = {"training": {"iterations": 100_000, "report_every": 50, "steps_per_second": 500}}


def _progress_after(ws: object, iteration: int) -> list[dict]:
    """Messages up to the first live progress past `iteration`: the run still trains."""
    return read_until(ws, lambda m: m["type"] == "progress" and m["iteration"] > iteration)


NOT_ACTIONS = [
    "not json",
    "{",
    "NaN",
    '{"action": NaN}',
    "null",
    "[]",
    '"pause"',
    '{"action": 5}',
    '{"action": ["pause"]}',
    '{"action": "PAUSE"}',
    '{"action": "delete"}',
    '{"act": "pause"}',
    '{"action": "step"}',  # valid, but only while paused: the run is running
    "\u0000\ud7ff\ue000",
]


def test_bad_text_messages_get_an_error_each_and_the_run_carries_on(
    engine_client: TestClient,
) -> None:
    client = engine_client
    run_id = client.post("/api/runs", json=LONG).json()["id"]
    path = f"/api/runs/{run_id}/stream"
    with client.websocket_connect(path) as ws:
        assert strict_loads(ws.receive_text())["type"] == "snapshot"
        for text in NOT_ACTIONS:
            ws.send_text(text)
            errors = read_until(ws, lambda m: m["type"] in ("error", "status"))
            assert errors[-1]["type"] == "error" and errors[-1]["message"], (text, errors[-1])
        iteration = client.get(f"/api/runs/{run_id}").json()["iteration"]
        _progress_after(ws, iteration)
        control(client, run_id, "cancel", {"cancelled"})
        final = read_until(ws, is_terminal)[-1]
    assert final["status"] == "cancelled"


@pytest.mark.parametrize(
    ("send", "code", "reason"),
    [
        (lambda ws: ws.send_bytes(b'{"action": "pause"}'), 1003, "binary"),
        (lambda ws: ws.send_text('{"action": "pause", "x": "' + "y" * 5000 + '"}'), 1009, "4096"),
    ],
)
def test_binary_and_oversized_frames_close_that_socket_only(
    engine_client: TestClient, send: object, code: int, reason: str
) -> None:
    client = engine_client
    run_id = client.post("/api/runs", json=LONG).json()["id"]
    path = f"/api/runs/{run_id}/stream"
    with client.websocket_connect(path) as bystander, client.websocket_connect(path) as ws:
        bystander.receive_text()
        ws.receive_text()
        send(ws)  # type: ignore[operator]
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_text()
        assert closed.value.code == code and reason in (closed.value.reason or "")
        # The other viewer and the run carry on; no pause was applied.
        iteration = client.get(f"/api/runs/{run_id}").json()["iteration"]
        seen = _progress_after(bystander, iteration)
        control(client, run_id, "cancel", {"cancelled"})
        seen += read_until(bystander, is_terminal)
    assert seen[-1]["status"] == "cancelled"
    assert "paused" not in [m.get("status") for m in seen]


def test_binary_frame_on_a_real_server(server: ServerProcess) -> None:
    import httpx

    slow = {"training": {"iterations": 20_000, "steps_per_second": 10}}  # within the run time bound
    run_id = httpx.post(f"{server.base}/api/runs", json=slow).json()["id"]
    with connect(f"{server.ws_base}/api/runs/{run_id}/stream") as ws:
        ws.recv(timeout=10)
        ws.send(b"\x00\x01binary")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    detail = httpx.get(f"{server.base}/api/runs/{run_id}").json()
    assert detail["status"] == "running"
    with httpx.Client(base_url=server.base) as http:
        control(http, run_id, "cancel", {"cancelled"})
