"""Helpers shared by the API and reliability tests: an in-process app client and strict
reading of its WebSocket messages. Importable from any test folder (pytest's `pythonpath`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from boundarylab.server.app import create_app
from boundarylab.server.messages import TERMINAL
from boundarylab.server.runs import RunRegistry
from boundarylab.server.settings import Settings
from boundarylab.server.worker import RunFactory


@contextmanager
def make_client(
    factory: RunFactory | None = None, mode: str = "thread", **overrides: Any
) -> Iterator[TestClient]:
    """A TestClient (lifespan started) for an app with the given settings overrides."""
    settings = Settings(**{"max_running": 2, **overrides})
    registry = RunRegistry(settings, mode=mode, **({"run_factory": factory} if factory else {}))
    with TestClient(create_app(settings, registry)) as client:
        yield client


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN/Infinity, as a browser's JSON.parse does."""

    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def read_until(ws: Any, predicate: Callable[[dict], bool], limit: int = 100_000) -> list[dict]:
    """Messages from a TestClient socket up to and including the first that satisfies
    `predicate`."""
    seen = []
    for _ in range(limit):
        message = strict_loads(ws.receive_text())
        seen.append(message)
        if predicate(message):
            return seen
    raise AssertionError("predicate never satisfied")


def is_terminal(message: dict) -> bool:
    """A final status, or a snapshot of a run that had already ended."""
    return message.get("type") in ("status", "snapshot") and message.get("status") in TERMINAL
