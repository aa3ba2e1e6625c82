"""The dependency direction of the package: engine <- server <- cli.

The engine is pure computation: it must never import the server, the command line or any
web framework, so it can be used (and tested) alone. This reads the import statements of
every engine module, so a new forbidden import fails here before anyone runs it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import boundarylab.engine

ENGINE = Path(boundarylab.engine.__file__).parent
FORBIDDEN = ("boundarylab.server", "boundarylab.cli", "fastapi", "starlette", "uvicorn")


def imported_modules(source: str, package: str) -> set[str]:
    """Absolute names of every module `source` imports (relative imports resolved
    against `package`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def forbidden_imports(source: str, package: str = "boundarylab.engine") -> list[str]:
    return sorted(
        name
        for name in imported_modules(source, package)
        if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)
    )


ENGINE_MODULES = sorted(ENGINE.rglob("*.py"))


@pytest.mark.parametrize("path", ENGINE_MODULES, ids=lambda p: p.name)
def test_engine_module_imports_no_server_or_web_code(path: Path) -> None:
    assert forbidden_imports(path.read_text()) == []


def test_the_check_sees_every_form_of_a_forbidden_import() -> None:
    assert forbidden_imports("import boundarylab.server.app") == ["boundarylab.server.app"]
    assert "boundarylab.server" in forbidden_imports("from boundarylab.server import messages")
    assert "boundarylab.server" in forbidden_imports("from ..server import runs")
    assert forbidden_imports("from fastapi import FastAPI") == ["fastapi", "fastapi.FastAPI"]
    assert forbidden_imports("def f():\n    import uvicorn\n") == ["uvicorn"]
    assert forbidden_imports("from boundarylab.engine import nn\nimport numpy") == []


def test_the_engine_has_modules_to_check() -> None:
    names = {p.stem for p in ENGINE_MODULES}
    assert {"config", "datasets", "nn", "tape", "regularizers", "batches", "training"} <= names
