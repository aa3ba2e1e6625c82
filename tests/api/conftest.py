"""Fixtures of the API tests (helpers live in api_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_support import FakeRun, make_client
from fastapi.testclient import TestClient


@pytest.fixture
def fake_client() -> Iterator[TestClient]:
    """An app whose runs are FakeRun (thread workers, lifespan started)."""
    with make_client(FakeRun) as client:
        yield client
