"""The per-address WebSocket caps over every replica (redis_places): one address behind two
replicas holds at most BOUNDARYLAB_MAX_WS_PER_ADDRESS connections and
BOUNDARYLAB_MAX_VIEWERS_PER_ADDRESS viewers of one run in all, refused past them with the
embedded server's close code and reason; a closed socket frees its place on every replica,
and a killed replica's places expire. Redis and two replicas as processes on loopback, no
worker (the runs stay queued, so their sockets stay open); every wait is bounded."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from redis_support import CLI, START_S, Cluster, post, start_redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from serverproc import server_env, start_server

pytestmark = pytest.mark.slow
SOCKETS, VIEWERS = 3, 2
TRY_AGAIN_LATER = 1013
PLACE_EXPIRY_S = 60.0  # a killed replica's places go within 5 s; a busy box, so bounded wide


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Redis and two replicas whose per-address caps are small."""
    tmp = tmp_path_factory.mktemp("redis-caps")
    cluster = Cluster(start_redis(tmp), tmp)
    env = server_env(redis_url=cluster.redis.url, max_ws_per_address=SOCKETS,
                     max_viewers_per_address=VIEWERS)  # fmt: skip
    try:
        for i in range(2):
            cluster.replicas.append(start_server([*CLI, "serve", "--port", "{port}"], env=env,
                                                 log_path=tmp / f"replica-{i}.log",
                                                 timeout=START_S))  # fmt: skip
        yield cluster
    finally:
        cluster.stop()


def open_viewer(stack: ExitStack, ws_base: str, run_id: str) -> ClientConnection:
    """A viewer, open until `stack` closes, whose snapshot arrived (so the server counted
    it)."""
    ws = stack.enter_context(connect(f"{ws_base}/api/runs/{run_id}/stream", max_size=None,
                                     open_timeout=30))  # fmt: skip
    assert '"snapshot"' in str(ws.recv(30))
    return ws


def no_places_held(cluster: Cluster) -> None:
    """Wait until the sockets of the tests before have given their places back."""
    eventually(lambda: cluster.redis.cli("zcard", "bl:sockets:127.0.0.1") == "0",
               "the sockets closed before still hold places")  # fmt: skip


def refusal(ws_base: str, run_id: str) -> tuple[int, str] | None:
    """(close code, reason) when the server refuses a viewer, None when it takes it (then
    closed again)."""
    with connect(f"{ws_base}/api/runs/{run_id}/stream", max_size=None,
                 open_timeout=30) as ws:  # fmt: skip
        try:
            ws.recv(30)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason
    return None


def eventually(check: Callable[[], Any], what: str, within: float = PLACE_EXPIRY_S) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_an_addresss_viewers_of_a_run_are_counted_over_both_replicas(capped: Cluster) -> None:
    a, b = capped.replicas
    no_places_held(capped)
    run_id = post(a.base, {})
    with ExitStack() as stack:
        on_a = open_viewer(stack, a.ws_base, run_id)
        open_viewer(stack, b.ws_base, run_id)
        refused = (TRY_AGAIN_LATER, "this address already watches this run 2 times (limit 2)")
        assert refusal(b.ws_base, run_id) == refused
        assert refusal(a.ws_base, run_id) == refused
        on_a.close()  # its place is free again, on every replica
        eventually(lambda: refusal(b.ws_base, run_id) is None, "the closed viewer's place")


def test_an_addresss_connections_are_counted_over_both_replicas(capped: Cluster) -> None:
    a, b = capped.replicas
    no_places_held(capped)
    first, second = post(a.base, {}), post(b.base, {})
    with ExitStack() as stack:
        open_viewer(stack, a.ws_base, first)
        open_viewer(stack, b.ws_base, first)
        open_viewer(stack, a.ws_base, second)
        refused = (TRY_AGAIN_LATER, "this address has 3 WebSocket connections open")
        assert refusal(b.ws_base, second) == refused
        assert refusal(a.ws_base, second) == refused
    eventually(lambda: refusal(b.ws_base, second) is None, "the closed sockets' places")


def test_a_killed_replicas_places_expire(capped: Cluster) -> None:
    """Last here: it kills replica A."""
    a, b = capped.replicas
    no_places_held(capped)
    first, second = post(b.base, {}), post(b.base, {})
    with ExitStack() as stack:
        open_viewer(stack, a.ws_base, first)
        open_viewer(stack, a.ws_base, second)
        open_viewer(stack, b.ws_base, first)
        assert refusal(b.ws_base, second) is not None  # three held, two of them on A
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait(30)
        eventually(lambda: refusal(b.ws_base, second) is None, "A's places never expired")
