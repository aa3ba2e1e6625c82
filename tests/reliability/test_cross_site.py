"""A page on another site must not be able to drive a user's local server.

Browsers let any page send a "simple" cross-site POST (no preflight, e.g. `fetch(url,
{method: "POST", mode: "no-cors"})` or a form), and they always attach `Origin` to it. An
empty body is a valid RunConfig (all defaults), so without an Origin check any web page a
student opens could start runs on their machine. DNS rebinding (a hostile name that resolves
to 127.0.0.1) makes Origin and Host agree, so the server also answers only to the Host names
it knows (BOUNDARYLAB_ALLOWED_HOSTS: the loopback names by default), wherever it runs.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from reliability_support import InstantRun, make_client

from boundarylab.server.settings import Settings
from serverproc import ServerProcess, running_server

EVIL = "http://evil.example"


@pytest.fixture
def client() -> TestClient:
    with make_client(InstantRun, allowed_origins=["http://teacher.example"]) as c:
        yield c  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/runs", b""), ("/api/runs", b"{}"), ("/api/datasets/preview", b"{}")],
)
def test_a_cross_site_post_is_403_and_starts_nothing(
    client: TestClient, path: str, body: bytes
) -> None:
    before = len(client.get("/api/runs").json())
    headers = {"origin": EVIL, "content-type": "text/plain"}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 403 and "cross-site" in response.json()["detail"]
    assert len(client.get("/api/runs").json()) == before


def test_cross_site_control_of_a_known_run_is_403(client: TestClient) -> None:
    run_id = client.post("/api/runs", json={"training": {"iterations": 3}}).json()["id"]
    for action in ("pause", "resume", "step", "cancel"):
        response = client.post(f"/api/runs/{run_id}/{action}", headers={"origin": EVIL})
        assert response.status_code == 403


def test_same_site_allowed_and_originless_posts_still_work(client: TestClient) -> None:
    body = {"training": {"iterations": 3}}
    assert client.post("/api/runs", json=body).status_code == 201  # curl, scripts: no Origin
    same = {"origin": "http://testserver"}
    assert client.post("/api/runs", json=body, headers=same).status_code == 201
    teacher = {"origin": "http://teacher.example"}
    assert client.post("/api/runs", json=body, headers=teacher).status_code == 201
    # Reading is harmless: the browser keeps a cross-site page from seeing the answer.
    assert client.get("/api/health", headers={"origin": EVIL}).status_code == 200


def _raw(server: ServerProcess, head: str) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head.encode())
        return int(s.recv(4096).split(b" ")[1])


@pytest.fixture(scope="module")
def module_app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The module's app under plain uvicorn, as a deployment may run it (not `serve()`)."""
    argv = [sys.executable, "-m", "uvicorn", "boundarylab.server.app:app", "--port", "{port}"]
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    with running_server(argv, settings={"max_running": 1}, log_path=log) as server:
        yield server


@pytest.mark.parametrize("which", ["server", "module_app_server"])
def test_dns_rebinding_is_refused(which: str, request: pytest.FixtureRequest) -> None:
    """A page at http://rebind.evil:PORT whose name now resolves to 127.0.0.1: same-origin
    to the browser, so Origin and Host agree, but Host is not a name this server answers
    to. Both `boundarylab serve` and the module app under uvicorn refuse it."""
    server: ServerProcess = request.getfixturevalue(which)
    rebound = f"rebind.evil:{server.port}"
    post = (
        f"POST /api/runs HTTP/1.1\r\nHost: {rebound}\r\nOrigin: http://{rebound}\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert _raw(server, post) == 400
    get = f"GET /api/runs HTTP/1.1\r\nHost: {rebound}\r\nConnection: close\r\n\r\n"
    assert _raw(server, get) == 400  # reading the list is what rebinding is for
    upgrade = (
        f"GET /api/runs/x/stream HTTP/1.1\r\nHost: {rebound}\r\nOrigin: http://{rebound}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    assert _raw(server, upgrade) == 400  # the socket is refused before the handshake
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}"):
        ok = f"GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        assert _raw(server, ok) == 200
    assert httpx.get(f"{server.base}/api/health").status_code == 200


def _status(client: TestClient, host: str) -> int:
    return client.get("/api/health", headers={"host": host}).status_code


@pytest.mark.parametrize(
    ("allowed_hosts", "answered", "refused"),
    [
        (["testserver"], ["localhost:8000", "127.0.0.1", "[::1]:8000"], ["lab.example"]),
        (["testserver", "lab.example"], ["lab.example", "LAB.example:8000"], ["pc.lab.example"]),
        (["testserver", "*.school.example"], ["pc1.school.example"], ["school.example.evil"]),
        (["*"], ["rebind.evil", "192.168.1.20:8000"], []),
    ],
)
def test_allowed_hosts_setting(
    allowed_hosts: list[str], answered: list[str], refused: list[str]
) -> None:
    with make_client(InstantRun, allowed_hosts=allowed_hosts) as client:
        assert all(_status(client, host) == 200 for host in answered), answered
        assert all(_status(client, host) == 400 for host in refused), refused


def test_the_hosts_of_allowed_origins_are_answered() -> None:
    with make_client(InstantRun, allowed_origins=["http://teacher.example:3000"]) as client:
        assert _status(client, "teacher.example:3000") == 200
        assert _status(client, "pupil.example") == 400


def test_a_misplaced_wildcard_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="wildcard"):
        Settings(allowed_hosts=["lab*.example"])
