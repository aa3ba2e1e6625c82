"""Fair share of the workers between clients (issue 11: "no client holds more than its share
of the workers while others wait"), against a real server process. Two loopback addresses
(127.0.0.x) are two people: the server takes the peer's address as the client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from abuse_support import SLOW, http_from, until

from serverproc import ServerProcess, running_server

pytestmark = pytest.mark.timeout(300)
HOG, OTHER = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """Two places (max_running 2), so a queue forms after two runs."""
    with running_server(settings={"max_running": 2, "log_level": "warning"}) as srv:
        yield srv


def _post(server: ServerProcess, body: dict[str, Any], address: str) -> str:
    with http_from(address) as client:
        answer = client.post(f"{server.base}/api/runs", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]  # type: ignore[no-any-return]


def _detail(server: ServerProcess, run_id: str) -> dict[str, Any]:
    return httpx.get(f"{server.base}/api/runs/{run_id}", timeout=10).json()  # type: ignore[no-any-return]


def test_a_second_person_waits_for_one_place_not_behind_every_run_of_the_first(
    server: ServerProcess,
) -> None:
    """One address queues four long runs (two train, two wait), then another address queues
    one: it is told place 1, ahead of the first address's waiting runs, and it starts when
    the next place frees, while theirs keep waiting."""
    hog = [_post(server, SLOW, HOG) for _ in range(4)]
    other = ""
    try:
        assert until(lambda: [_detail(server, r)["status"] for r in hog[:2]] == ["running"] * 2,
                     60)  # fmt: skip
        assert [_detail(server, r).get("position") for r in hog[2:]] == [1, 2]
        other = _post(server, SLOW, OTHER)
        waiting = _detail(server, other)
        assert waiting["status"] == "queued" and waiting["position"] == 1, waiting
        assert "expected_wait_s" in waiting
        assert [_detail(server, r).get("position") for r in hog[2:]] == [2, 3]

        with http_from(HOG) as owner:  # the first person ends one of its runs: a place frees
            assert owner.post(f"{server.base}/api/runs/{hog[0]}/cancel").status_code == 200
        assert until(lambda: _detail(server, other)["status"] == "running", 60), _detail(
            server, other
        )
        # Each holds one place now; the first person's waiting runs still wait, in order.
        after = [_detail(server, r) for r in hog[2:]]
        assert [(d["status"], d.get("position")) for d in after] == [("queued", 1),
                                                                     ("queued", 2)]  # fmt: skip
    finally:
        for run_id in [*hog, other]:
            if run_id:
                httpx.post(f"{server.base}/api/runs/{run_id}/cancel", timeout=10)
