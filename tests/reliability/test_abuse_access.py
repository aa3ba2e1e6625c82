"""One person must not take runs from another (issue 11 items 3, 4, 14; issue 10 item 11),
against a real server process. Two loopback addresses (127.0.0.x) are two people."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from abuse_support import SLOW, close_code, http_from, tcp_from, until, ws_from
from websockets.sync.client import connect

from serverproc import ServerProcess, running_server

SETTINGS = {
    "max_runs_per_client": 2,
    "max_viewers_per_address": 2,
    "max_ws_per_address": 4,
    "viewer_stall_seconds": 1.5,
    "max_running": 3,
    "log_level": "warning",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server(settings=SETTINGS) as srv:
        yield srv


def _start(server: ServerProcess, address: str, body: dict[str, Any] = SLOW) -> str:
    with http_from(address) as client:
        created = client.post(f"{server.base}/api/runs", json=body)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


def _cancel(server: ServerProcess, *run_ids: str) -> None:
    for run_id in run_ids:
        httpx.post(f"{server.base}/api/runs/{run_id}/cancel", timeout=10)


def test_the_run_list_shows_a_caller_only_its_own_runs(server: ServerProcess) -> None:
    mine = _start(server, "127.0.0.2")
    try:
        with http_from("127.0.0.2") as me, http_from("127.0.0.3") as other:
            assert mine in {r["id"] for r in me.get(f"{server.base}/api/runs").json()}
            assert mine not in {r["id"] for r in other.get(f"{server.base}/api/runs").json()}
            # The id is the key: whoever was given it may still look.
            assert other.get(f"{server.base}/api/runs/{mine}").status_code == 200
    finally:
        _cancel(server, mine)


def test_a_forged_forwarded_for_does_not_dodge_the_per_client_cap(
    server: ServerProcess,
) -> None:
    ids: list[str] = []
    try:
        with http_from("127.0.0.4") as client:
            for i in range(3):
                forged = {"X-Forwarded-For": f"10.9.8.{i}", "X-Real-IP": f"10.9.8.{i}"}
                answer = client.post(f"{server.base}/api/runs", json=SLOW, headers=forged)
                if answer.status_code == 201:
                    ids.append(answer.json()["id"])
            assert len(ids) == 2 and answer.status_code == 429, answer.text
            listed = client.get(f"{server.base}/api/runs").json()
            assert {r["id"] for r in listed} >= set(ids)  # counted as this peer's runs
    finally:
        _cancel(server, *ids)


def test_one_address_holds_only_a_few_of_a_runs_viewer_slots(server: ServerProcess) -> None:
    run_id = _start(server, "127.0.0.5")
    try:
        first, second = ws_from(server, run_id, "127.0.0.6"), ws_from(server, run_id, "127.0.0.6")
        with first, second:
            assert '"snapshot"' in first.recv(timeout=10)
            assert '"snapshot"' in second.recv(timeout=10)
            with ws_from(server, run_id, "127.0.0.6") as third:
                assert close_code(third) == 1013
            # The run's creator (another address) still gets in.
            with ws_from(server, run_id, "127.0.0.5") as creator:
                assert '"snapshot"' in creator.recv(timeout=10)
    finally:
        _cancel(server, run_id)


def test_one_address_holds_only_a_few_websocket_connections(server: ServerProcess) -> None:
    runs = [_start(server, "127.0.0.7"), _start(server, "127.0.0.7"), _start(server, "127.0.0.8")]
    try:
        with ExitStack() as held:
            for run_id in runs[:2]:
                for _ in range(2):
                    viewer = held.enter_context(ws_from(server, run_id, "127.0.0.9"))
                    assert '"snapshot"' in viewer.recv(timeout=10)
            with ws_from(server, runs[2], "127.0.0.9") as fifth:
                assert close_code(fifth) == 1013
            with ws_from(server, runs[2], "127.0.0.10") as elsewhere:
                assert '"snapshot"' in elsewhere.recv(timeout=10)
    finally:
        _cancel(server, *runs)


def _never_reading_viewer(server: ServerProcess, run_id: str, address: str) -> Any:
    """A viewer that reads nothing once its client's small buffers are full."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((address, 0))
    sock.connect(("127.0.0.1", server.port))
    url = f"{server.ws_base}/api/runs/{run_id}/stream"
    return connect(url, sock=sock, max_size=None, max_queue=1, open_timeout=10)


def test_a_viewer_that_does_not_read_is_cut_off_and_frees_its_slot(
    server: ServerProcess,
) -> None:
    heavy = {**SLOW, "view": {"resolution": 300, "max_fps": 60}}
    run_id = _start(server, "127.0.0.11", heavy)

    def running() -> bool:  # a queued run sends nothing: no socket would ever fill
        return (
            httpx.get(f"{server.base}/api/runs/{run_id}", timeout=10).json()["status"] == "running"
        )

    assert until(running, timeout=60, interval=0.5)
    try:
        with ExitStack() as stuck:
            for _ in range(2):
                stuck.enter_context(_never_reading_viewer(server, run_id, "127.0.0.12"))

            def a_slot_came_free() -> bool:
                with ws_from(server, run_id, "127.0.0.12") as viewer:
                    return close_code(viewer, timeout=2) is None  # not refused: watching

            assert until(a_slot_came_free, timeout=90, interval=0.5)
            run = httpx.get(f"{server.base}/api/runs/{run_id}", timeout=10).json()
            assert run["status"] == "running"  # cut off by the stall, not by the run's end
    finally:
        _cancel(server, run_id)


def test_a_raw_connection_from_the_same_address_still_reaches_health(
    server: ServerProcess,
) -> None:
    with tcp_from(server, "127.0.0.12") as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


def test_a_named_proxy_s_forwarded_for_is_the_client() -> None:
    """With BOUNDARYLAB_FORWARDED_ALLOW_IPS naming the proxy (here 127.0.0.1), the address
    it forwards is the client: two people behind it get a cap each. Anyone else's header is
    still ignored."""
    settings = {**SETTINGS, "forwarded_allow_ips": '["127.0.0.1"]'}
    ids: list[str] = []
    with running_server(settings=settings) as proxied, http_from("127.0.0.1") as proxy:
        try:
            for person in ("10.9.8.1", "10.9.8.2"):
                forwarded = {"X-Forwarded-For": person}
                for _ in range(2):
                    answer = proxy.post(f"{proxied.base}/api/runs", json=SLOW, headers=forwarded)
                    assert answer.status_code == 201, (person, answer.text)
                    ids.append(answer.json()["id"])
                over = proxy.post(f"{proxied.base}/api/runs", json=SLOW, headers=forwarded)
                assert over.status_code == 429, over.text  # this person's cap, not the proxy's
                listed = proxy.get(f"{proxied.base}/api/runs", headers=forwarded).json()
                assert {r["id"] for r in listed} == set(ids[-2:])
            with http_from("127.0.0.2") as stranger:  # not the named proxy: header ignored
                forged = {"X-Forwarded-For": "10.9.8.3"}
                for expected in (201, 201, 429):
                    answer = stranger.post(f"{proxied.base}/api/runs", json=SLOW, headers=forged)
                    assert answer.status_code == expected, answer.text
                    if expected == 201:
                        ids.append(answer.json()["id"])
                mine = stranger.get(f"{proxied.base}/api/runs").json()
                assert {r["id"] for r in mine} == set(ids[-2:])
        finally:
            _cancel(proxied, *ids)
