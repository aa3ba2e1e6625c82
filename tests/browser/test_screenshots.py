"""The README's screenshots are taken by scripts/screenshots.py, never by the tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CHROMIUM, REPO, _require_chromium

pytestmark = pytest.mark.browser

HERE = Path(__file__).parent


def test_tests_save_screenshots_only_under_tmp_path() -> None:
    """Running the tests must not rewrite tracked files: every `.screenshot(path=…)` in the
    browser tests names a path built from pytest's tmp_path."""
    calls = 0
    for source in HERE.glob("test_*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in ("screenshot", "save_as"):
                continue
            calls += 1
            target = next((k.value for k in node.keywords if k.arg == "path"), None)
            target = target or (node.args[0] if node.args else None)
            names = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)} if target else set()
            assert "tmp_path" in names, f"{source.name}:{node.lineno} writes outside tmp_path"
    assert calls >= 3


def test_the_screenshot_command_writes_into_the_folder_it_is_given(tmp_path: Path) -> None:
    _require_chromium()
    command = [sys.executable, "scripts/screenshots.py", "--out", str(tmp_path)]
    done = subprocess.run(
        [*command, "--chromium", CHROMIUM, "--only", "screenshot-run.png"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    picture = tmp_path / "screenshot-run.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 30_000  # a page with plots, not a blank
    assert [p.name for p in tmp_path.iterdir()] == ["screenshot-run.png"]
