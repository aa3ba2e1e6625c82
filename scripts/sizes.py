"""List what is past the house's size limits (issue 9): files over ~400 lines, classes over
~200, functions over ~50, in the given folders (default: backend bench scripts).

    python scripts/sizes.py [FOLDER ...]

Prints one line per offender and exits 1 when there is any, 0 otherwise.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FILE, MAX_CLASS, MAX_FUNCTION = 400, 200, 50


def offenders(path: Path) -> list[str]:
    """What in one Python file is past a limit, as `kind path:line name length` lines."""
    source = path.read_text()
    found = []
    if (lines := source.count("\n")) > MAX_FILE:
        found.append(f"file {path} {lines}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            is_class = isinstance(node, ast.ClassDef)
            if length > (MAX_CLASS if is_class else MAX_FUNCTION):
                kind = "class" if is_class else "function"
                found.append(f"{kind} {path}:{node.lineno} {node.name} {length}")
    return found


def main(folders: list[str]) -> int:
    found = [
        line
        for folder in folders or ["backend", "bench", "scripts"]
        for path in sorted(Path(folder).rglob("*.py"))
        for line in offenders(path)
    ]
    print("\n".join(found) or "nothing past the limits")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
