"""A replica killed under its viewers (issue 17): two replicas and one worker on a real
Redis, behind a small load balancer (balancer.py). A viewer watches a run through the
balancer; the replica serving it is SIGKILLed mid-run; the viewer reconnects to the same
address, as the page does, reaches the other replica, and gets the snapshot and the rest:
exactly the numbers of the embedded server. Every wait is bounded."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest
from balancer import Balancer
from redis_support import RECV_S, Cluster, start_redis
from test_redis_replicas import embedded_outcome
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app_client import Watched, is_terminal, strict_loads

pytestmark = pytest.mark.slow
# ~8 s of paced training: long enough to kill a replica half-way on a busy machine.
PACED = {"training": {"iterations": 8000, "steps_per_second": 1000}}


@pytest.fixture
def one_worker_two_replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("killed")
    cluster = Cluster(start_redis(tmp), tmp)
    try:
        cluster.start_worker()
        cluster.start_replica(workers_ready=1)
        cluster.start_replica(workers_ready=1)
        yield cluster
    finally:
        cluster.stop()


def test_a_replica_killed_under_its_viewer_loses_it_nothing(
    one_worker_two_replicas: Cluster,
) -> None:
    cluster = one_worker_two_replicas
    balancer = Balancer([r.port for r in cluster.replicas])
    try:
        run_id = httpx.post(f"{balancer.base}/api/runs", json=PACED, timeout=30).json()["id"]
        stream = f"{balancer.ws_base}/api/runs/{run_id}/stream"
        before: list[dict] = []
        with connect(stream, max_size=None, open_timeout=30) as ws:
            serving = next(r for r in cluster.replicas if r.port == balancer.chosen[-1])
            while True:  # some progress first, then the replica dies under the viewer
                message = strict_loads(ws.recv(RECV_S))
                before.append(message)
                if is_terminal(message) or (message["type"] == "progress"
                                            and message["iteration"] >= 1000):  # fmt: skip
                    break
            assert not is_terminal(before[-1]), "the run ended before the replica was killed"
            serving.proc.send_signal(signal.SIGKILL)
            serving.proc.wait(30)
            with pytest.raises(ConnectionClosed):
                for _ in range(100_000):
                    ws.recv(RECV_S)
        with connect(stream, max_size=None, open_timeout=30) as ws:  # as the page reconnects
            after = []
            while not after or not is_terminal(after[-1]):
                after.append(strict_loads(ws.recv(RECV_S)))
    finally:
        balancer.stop()
    seen = Watched(after)
    assert seen.end["status"] == "completed", (seen.end, cluster.logs())
    shown = Watched(before).progress  # A's snapshot history, then what came live
    assert seen.snapshot["history"][: len(shown)] == shown  # nothing lost in the move
    history, model = embedded_outcome(PACED)
    assert seen.progress == history  # exactly the embedded server's numbers
    survivor = next(r for r in cluster.replicas if r.proc.poll() is None)
    assert httpx.get(f"{survivor.base}/api/runs/{run_id}/model", timeout=30).json() == model
