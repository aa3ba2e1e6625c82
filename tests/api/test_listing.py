"""GET /api/runs in both modes (mode_client): a caller is listed the runs its address
created, oldest first, and with BOUNDARYLAB_LIST_ALL_RUNS every run (README "who can do
what"). Redis mode lists from Redis (tests/redis/test_redis_listing.py has two replicas)."""

from __future__ import annotations

import pytest
from api_support import FakeRun
from fastapi.testclient import TestClient

from modes import ClientFactory

SHORT = {"training": {"iterations": 100}}


def from_address(client: TestClient, host: str) -> TestClient:
    """Requests to `client`'s app, on its event loop, from another client address."""
    other = TestClient(client.app, client=(host, 50000))
    other.portal = client.portal
    return other


@pytest.mark.parametrize("list_all", [False, True])
def test_a_caller_is_listed_its_own_runs_or_all_when_the_server_says(
    mode_client: ClientFactory, list_all: bool
) -> None:
    with mode_client(FakeRun, list_all_runs=list_all) as me:
        them = from_address(me, "203.0.113.7")
        first = me.post("/api/runs", json=SHORT).json()["id"]
        theirs = them.post("/api/runs", json=SHORT).json()["id"]
        second = me.post("/api/runs", json=SHORT).json()["id"]
        mine = [run["id"] for run in me.get("/api/runs").json()]
        seen_by_them = [run["id"] for run in them.get("/api/runs").json()]
    everything = [first, theirs, second]
    assert mine == (everything if list_all else [first, second])
    assert seen_by_them == (everything if list_all else [theirs])
