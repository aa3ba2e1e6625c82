"""Fixtures of the Redis mode tests (the helpers are in redis_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_support import Cluster, start_redis


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Redis, two workers, two replicas."""
    tmp = tmp_path_factory.mktemp("redis")
    cluster = Cluster(start_redis(tmp), tmp)
    try:
        cluster.start_worker()
        cluster.start_worker()
        cluster.start_replica(workers_ready=2)
        cluster.start_replica(workers_ready=2)
        yield cluster
    finally:
        cluster.stop()
