"""Fixtures of the reliability tests (helpers live in reliability_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from reliability_support import FaultyEngineRun, make_client


@pytest.fixture
def engine_client() -> Iterator[TestClient]:
    """The real engine in thread workers, with faults injectable by training.seed."""
    with make_client(FaultyEngineRun, max_running=2) as client:
        yield client
