"""Fixtures of the reliability tests (helpers live in reliability_support.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from reliability_support import FaultyEngineRun, make_client

from serverproc import ServerProcess, running_server

CLI = str(Path(sys.executable).parent / "boundarylab")
SERVE = [CLI, "serve", "--port", "{port}", "--log-level", "warning"]


@pytest.fixture
def engine_client() -> Iterator[TestClient]:
    """The real engine in thread workers, with faults injectable by training.seed."""
    with make_client(FaultyEngineRun, max_running=2) as client:
        yield client


@pytest.fixture(scope="session")
def serve_argv() -> list[str]:
    """`boundarylab serve` as a user types it (no --host), on a free port."""
    return SERVE


@pytest.fixture(scope="session")
def server(serve_argv: list[str]) -> Iterator[ServerProcess]:
    """One real server (process workers, default settings) shared by the tests that only
    need one: starting it costs seconds (it imports NumPy, scikit-learn and spawns workers)."""
    with running_server(serve_argv) as srv:
        yield srv
