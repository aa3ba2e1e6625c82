"""Guards with gaps (issue 11 items 8 and 18), against the shared real server (defaults)."""

from __future__ import annotations

import httpx
from abuse_support import tcp_from

from serverproc import ServerProcess


def test_no_path_is_served_without_the_csp(server: ServerProcess) -> None:
    """/docs runs under the app's own CSP (its Swagger UI is served locally), so no path,
    however spelled, is exempt: an exemption by prefix once served the app without it."""
    for path in ("/docs%2f..%2findex.html", "/docs/../index.html", "/docsx", "/redoc/x"):
        with tcp_from(server) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = sock.recv(65536).split(b"\r\n\r\n")[0].lower()
        assert b"content-security-policy:" in head or head.startswith(b"http/1.1 404"), path
    docs = httpx.get(f"{server.base}/docs", timeout=10)
    assert docs.status_code == 200 and "content-security-policy" in docs.headers


def test_no_page_may_frame_the_app(server: ServerProcess) -> None:
    for path in ("/", "/api/health", "/docs"):
        assert httpx.get(f"{server.base}{path}", timeout=10).headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in httpx.get(server.base).headers["content-security-policy"]


def test_a_content_length_of_thousands_of_digits_is_refused_not_a_500(
    server: ServerProcess,
) -> None:
    with tcp_from(server) as sock:
        sock.sendall(
            b"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + b"9" * 5001 + b"\r\n\r\n{}"
        )
        status = sock.recv(100).split(b"\r\n")[0]
    assert status.split()[1] in (b"400", b"413"), status
    assert httpx.get(f"{server.base}/api/health", timeout=10).status_code == 200


def test_head_answers_like_get_and_debug_routes_are_off(server: ServerProcess) -> None:
    head = httpx.head(f"{server.base}/api/health", timeout=10)
    assert head.status_code == 200 and head.content == b""
    for method in ("GET", "POST"):
        lag = httpx.request(method, f"{server.base}/api/debug/loop-lag", timeout=10)
        assert lag.status_code in (404, 405)
    reset = httpx.post(f"{server.base}/api/debug/loop-lag/reset", timeout=10)
    assert reset.status_code in (404, 405)


def test_booleans_are_not_numbers(server: ServerProcess) -> None:
    refused = httpx.post(
        f"{server.base}/api/runs", json={"training": {"iterations": True}}, timeout=10
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][-2:] == ["training", "iterations"]
