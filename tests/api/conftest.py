"""Fixtures of the API tests (helpers live in api_support.py; the two modes in modes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import FakeRun, make_client
from fastapi.testclient import TestClient

from modes import MODES, ClientFactory, client_factory, start_redis
from serverproc import RedisServer


@pytest.fixture
def fake_client() -> Iterator[TestClient]:
    """An app whose runs are FakeRun (thread workers, lifespan started)."""
    with make_client(FakeRun) as client:
        yield client


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session's Redis-mode tests (emptied before each client)."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.proc.terminate()
    server.proc.wait(10)


@pytest.fixture(params=MODES)
def mode_client(request: pytest.FixtureRequest) -> ClientFactory:
    """make_client for each mode in turn: the embedded server, then a Redis-mode replica
    with a worker (modes.py). A test that takes it runs against both."""
    return client_factory(request.param, request)


@pytest.fixture
def any_client(mode_client: ClientFactory) -> Iterator[TestClient]:
    """fake_client in each mode: FakeRun runs, on the embedded server and in Redis mode."""
    with mode_client(FakeRun) as client:
        yield client
