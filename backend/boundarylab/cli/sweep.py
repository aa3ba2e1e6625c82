"""``boundarylab train --sweep FIELD=V1,V2,…``: one run per value of one field, as a table.

The field is named by its dotted path in the run config, and the values are converted as the
field's own flag converts them (so ``none`` is an empty batch size, ``x1,x2`` a list of
features), then validated by the engine's SweepConfig like the API's sweeps."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

from pydantic import ValidationError

from boundarylab.cli.flags import Flag, Path, schema_flags
from boundarylab.engine.config import RunConfig
from boundarylab.engine.sweep import SweepConfig, field_paths, sweep


def _convert(flag: Flag | None, text: str) -> Any:
    """One value's text as the field's type (JSON, then plain text, for a field without a
    flag)."""
    if flag is not None:
        return flag.convert(text)
    try:
        return json.loads(text)
    except ValueError:
        return text


def split_values(text: str) -> list[str]:
    """'a,b,c' -> one value each; with a ';' anywhere the values are separated by ';', so
    each may be a comma-separated list ('3;8,8' -> '3', '8,8')."""
    separator = ";" if ";" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]


def parse_sweep(parser: argparse.ArgumentParser, flags: list[Flag], base: RunConfig,
                text: str) -> SweepConfig:  # fmt: skip
    """The validated sweep of ``--sweep`` (or the usage error naming what is wrong)."""
    path, equals, values_text = text.partition("=")
    path = path.strip()
    if not equals or not values_text.strip():
        parser.error(f"--sweep: expected FIELD=V1,V2,… such as training.reg_lambda=0,0.01,0.1, "
                     f"got {text!r}")  # fmt: skip
    if path not in field_paths():
        parser.error(f"--sweep: {path!r} is not a field of the run config (one of: "
                     f"{', '.join(field_paths())})")  # fmt: skip
    flag = next((f for f in schema_flags() if ".".join(f.path) == path), None)
    values = []
    for part in split_values(values_text):
        try:
            values.append(_convert(flag, part))
        except ValueError as exc:
            parser.error(f"--sweep {path}: {exc}")
    try:
        return SweepConfig(base=base, field=path, values=values)
    except ValidationError as exc:
        parser.error("; ".join(f"--sweep {err['msg']}" for err in exc.errors()))


def _cell(value: float | None, width: int, digits: int) -> str:
    if value is None or not math.isfinite(value):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def run_sweep(plan: SweepConfig, fmt: str, processes: int, name_of: dict[Path, str]) -> int:
    """Train every cell; print a table (or JSON lines); 1 when a cell diverged."""
    from boundarylab.cli import _print_jsonl, _with_flag_names

    started = time.perf_counter()
    rows = sweep(plan, processes=processes)
    if fmt == "jsonl":
        for row in rows:
            _print_jsonl({"type": "sweep", "field": plan.field, **row})
    else:
        width = max(len(plan.field), *(len(_shown(r["value"])) for r in rows))
        print(f"{plan.field:>{width}}  {'loss':>9}  {'train_acc':>9}  {'test_loss':>9}  "
              f"{'test_acc':>9}  {'seconds':>8}")  # fmt: skip
        for row in rows:
            cells = [_cell(row["loss"], 9, 6), _cell(row["train_accuracy"], 9, 4),
                     _cell(row.get("test_loss"), 9, 6), _cell(row.get("test_accuracy"), 9, 4),
                     _cell(row["seconds"], 8, 2)]  # fmt: skip
            print(f"{_shown(row['value']):>{width}}  " + "  ".join(cells))
        print(f"total: {time.perf_counter() - started:.2f} s", flush=True)
    for row in rows:
        if row["message"]:
            message = _with_flag_names(row["message"], name_of)
            print(f"{plan.field} = {_shown(row['value'])}: {message}", file=sys.stderr)
    return 1 if any(row["message"] for row in rows) else 0
