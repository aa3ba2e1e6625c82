"""Security against a real server (`boundarylab serve`): static files, headers, bind address,
cross-site WebSockets, frame sizes, run ids and the per-client / per-run limits.

Raw sockets are used for paths because HTTP clients normalise `..` before sending.
"""

from __future__ import annotations

import re
import socket
import uuid

import httpx
import psutil
import pytest
from reliability_support import InstantRun, make_client, strict_loads
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from boundarylab.server.app import frontend_dir
from boundarylab.server.settings import Settings
from serverproc import ServerProcess

OUTSIDE_MARKERS = (b"root:", b"[project]", b"[tool.", b"def create_app", b"[core]")
TRAVERSALS = [
    "/../pyproject.toml",
    "/../../../../../../etc/passwd",
    "/%2e%2e/pyproject.toml",
    "/%2E%2E%2Fpyproject.toml",
    "/..%2f..%2fetc/passwd",
    "/.%2e/.%2e/etc/passwd",
    "/%252e%252e/pyproject.toml",
    "/%c0%ae%c0%ae/pyproject.toml",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/etc/passwd",
    "/js/../../pyproject.toml",
    "/js/%2e%2e/%2e%2e/backend/boundarylab/server/app.py",
    "/vendor/../../pyproject.toml",
    "/..\\pyproject.toml",
    "/%5c..%5cpyproject.toml",
    "/index.html%00.js",
    "/../.git/config",
    "http://127.0.0.1/../pyproject.toml",
]


def raw_get(server: ServerProcess, target: str) -> tuple[int, bytes]:
    """GET exactly `target` (no client-side normalisation); (status, body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        s.sendall(request.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_static_route_serves_the_page(server: ServerProcess) -> None:
    assert raw_get(server, "/")[0] == 200
    assert raw_get(server, "/js/main.js")[0] == 200


@pytest.mark.parametrize("target", TRAVERSALS)
def test_static_route_never_reads_outside_frontend(server: ServerProcess, target: str) -> None:
    status, body = raw_get(server, target)
    assert status in (400, 404), (status, body[:200])
    assert not any(marker in body for marker in OUTSIDE_MARKERS)


def test_security_headers_on_every_kind_of_response(server: ServerProcess) -> None:
    for method, path, body in [
        ("GET", "/", None),
        ("GET", "/js/main.js", None),
        ("GET", "/api/health", None),
        ("GET", "/no-such-file", None),
        ("POST", "/api/runs", b'{"training": {"learning_rate": -1}}'),
        ("POST", "/api/runs", b" " * 100_000),
    ]:
        response = httpx.request(method, server.base + path, content=body, timeout=10)
        csp = response.headers["content-security-policy"]
        scripts = re.search(r"script-src ([^;]*)", csp)
        assert scripts and scripts.group(1).split() == ["'self'"], csp  # no inline, no CDN
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_page_needs_no_inline_script() -> None:
    """What the CSP forbids must not be in the page: inline scripts or on* handlers."""
    for page in frontend_dir().rglob("*.html"):
        html = page.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, tag
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), f"inline script in {page}"
        assert not re.search(r"\son[a-z]+\s*=", html), f"inline event handler in {page}"
        assert "javascript:" not in html


def test_serve_binds_loopback_by_default(server: ServerProcess) -> None:
    assert Settings.model_fields["host"].default == "127.0.0.1"  # whatever this env says
    listening = [
        c.laddr
        for c in psutil.Process(server.proc.pid).net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening


def test_cross_site_websocket_is_closed_same_host_is_served(server: ServerProcess) -> None:
    run = httpx.post(f"{server.base}/api/runs", json={"training": {"iterations": 50}}).json()
    url = f"{server.ws_base}/api/runs/{run['id']}/stream"
    evil = connect(url, origin="http://evil.example")  # type: ignore[arg-type]
    with evil as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "cross-site" in closed.value.rcvd.reason
    same_host = f"http://127.0.0.1:{server.port}"
    with connect(url, origin=same_host) as ws:  # type: ignore[arg-type]
        assert strict_loads(ws.recv(timeout=10))["type"] == "snapshot"


def test_allowed_origins_setting_lets_one_other_site_in() -> None:
    with make_client(InstantRun, allowed_origins=["http://teacher.example"]) as client:
        run_id = client.post("/api/runs", json={"training": {"iterations": 3}}).json()["id"]
        path = f"/api/runs/{run_id}/stream"
        with client.websocket_connect(path, headers={"origin": "http://teacher.example"}) as ws:
            assert strict_loads(ws.receive_text())["type"] == "snapshot"
        with client.websocket_connect(path, headers={"origin": "http://pupil.example"}) as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 1008


def test_websocket_frames_over_the_limits_are_closed_with_1009(server: ServerProcess) -> None:
    slow = {"training": {"iterations": 20_000, "steps_per_second": 10}}  # still running
    run = httpx.post(f"{server.base}/api/runs", json=slow).json()
    url = f"{server.ws_base}/api/runs/{run['id']}/stream"
    for size in (5_000, 200_000):  # over the app's limit; over the protocol's limit too
        with connect(url, max_size=None) as ws:
            ws.recv(timeout=10)
            with pytest.raises(ConnectionClosed) as closed:
                ws.send('{"action": "pause", "pad": "' + "x" * size + '"}')
                while True:
                    ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert httpx.get(f"{server.base}/api/health").json()["status"] == "ok"
    assert httpx.post(f"{server.base}/api/runs/{run['id']}/cancel").status_code == 200


def test_run_ids_are_random_uuids_and_404s_leak_nothing() -> None:
    with make_client(InstantRun, max_runs_per_client=100) as client:
        ids = [
            client.post("/api/runs", json={"training": {"iterations": 2}}).json()["id"]
            for _ in range(20)
        ]
        assert len(set(ids)) == 20
        assert all(uuid.UUID(run_id).version == 4 for run_id in ids)
        missing = client.get(f"/api/runs/{uuid.uuid4()}").text
        assert not any(run_id in missing for run_id in ids)
        # The list is deliberate: a classroom server shows its runs to everyone in the room.
        assert {r["id"] for r in client.get("/api/runs").json()} == set(ids)


def test_runs_per_client_and_viewers_per_run_are_limited() -> None:
    with make_client(max_runs_per_client=2, max_viewers_per_run=2, max_running=1) as client:
        slow = {"training": {"iterations": 1000, "steps_per_second": 50}}
        first = client.post("/api/runs", json=slow).json()["id"]
        assert client.post("/api/runs", json=slow).status_code == 201
        refused = client.post("/api/runs", json=slow)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "limit 2" in refused.json()["detail"]
        path = f"/api/runs/{first}/stream"
        with client.websocket_connect(path) as a, client.websocket_connect(path) as b:
            a.receive_text(), b.receive_text()
            with client.websocket_connect(path) as third:
                with pytest.raises(WebSocketDisconnect) as closed:
                    third.receive_text()
                assert closed.value.code == 1013
        client.post(f"/api/runs/{first}/cancel")
        assert client.post("/api/runs", json=slow).status_code == 201  # a slot came free
        for run in client.get("/api/runs").json():
            client.post(f"/api/runs/{run['id']}/cancel")
