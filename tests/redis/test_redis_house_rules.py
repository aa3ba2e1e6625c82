"""The house rules on size (docs/architecture.md, the team's standards) for Redis mode's
modules: a file past ~400 lines, a class past ~200 or a function past ~50 is split.
Read from the source, so a module that grows past one fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import boundarylab.server

REDIS_MODULES = sorted(Path(boundarylab.server.__file__).parent.glob("redis_*.py"))
MAX_FILE, MAX_CLASS, MAX_FUNCTION = 400, 200, 50


def oversized(source: str) -> list[str]:
    """What in `source` is past the limits, as "kind name: N lines"."""
    found = []
    lines = source.count("\n")
    if lines > MAX_FILE:
        found.append(f"file: {lines} lines")
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        size = (node.end_lineno or node.lineno) - node.lineno + 1
        if isinstance(node, ast.ClassDef) and size > MAX_CLASS:
            found.append(f"class {node.name}: {size} lines")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and size > MAX_FUNCTION:
            found.append(f"function {node.name}: {size} lines")
    return found


@pytest.mark.parametrize("path", REDIS_MODULES, ids=lambda p: p.name)
def test_redis_modules_keep_the_size_rules(path: Path) -> None:
    assert oversized(path.read_text()) == []


def test_the_check_sees_a_long_class_and_function() -> None:
    long_function = "def f():\n" + "    x = 1\n" * 60
    long_class = "class C:\n" + "".join(f"    def m{i}(self):\n        pass\n" for i in range(110))
    assert oversized(long_function) == ["function f: 61 lines"]
    assert oversized(long_class) == ["class C: 221 lines"]
    assert len(REDIS_MODULES) >= 5
