"""scripts/sizes.py, the check of the house's size limits (issue 9): it flags exactly what
is past a limit."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from packaging_support import REPO


def _sizes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sizes", REPO / "scripts" / "sizes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function(name: str, lines: int) -> str:
    return f"def {name}():\n" + "    x = 1\n" * (lines - 1)


def test_sizes_flags_only_what_is_past_a_limit(tmp_path: Path) -> None:
    sizes = _sizes()
    ok = tmp_path / "ok.py"
    ok.write_text(_function("fits", 50))
    assert sizes.offenders(ok) == []
    long = tmp_path / "long.py"
    body = "class Big:\n" + "".join(
        "    " + line + "\n" for line in _function("method", 51).splitlines()
    )
    long.write_text(body + "    y = 2\n" * 150 + "z = 3\n" * 200)
    found = sizes.offenders(long)
    assert [line.split()[0] for line in found] == ["file", "class", "function"], found
    assert found[2].endswith("method 51")
    assert sizes.main([str(tmp_path)]) == 1
    long.unlink()
    assert sizes.main([str(tmp_path)]) == 0
