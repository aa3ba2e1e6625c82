"""Fixtures of the engine tests: configs built from the one schema, and a JSON-safety check.

Helpers are handed out as fixtures (never imported from here), so this conftest cannot clash
with the other areas' conftest modules.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from boundarylab.engine.config import RunConfig


def _make_config(**sections: dict) -> RunConfig:
    return RunConfig.model_validate(sections)


def _assert_json_safe(message: dict) -> None:
    json.dumps(message, allow_nan=False)


@pytest.fixture
def make_config() -> Callable[..., RunConfig]:
    """A validated RunConfig from partial sections, e.g. make_config(training={...})."""
    return _make_config


@pytest.fixture
def assert_json_safe() -> Callable[[dict], None]:
    """Every message must serialise without NaN or Infinity (browsers reject them)."""
    return _assert_json_safe
