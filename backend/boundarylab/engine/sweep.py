"""Sweep one setting: the same run once per value of one field, everything else equal.

A sweep names its field by its dotted path in RunConfig (``training.reg_lambda``) and lists
the values. ``SweepConfig`` validates both against the one schema: an unknown field is an
error on ``field``, a value the field refuses is an error on ``values.<i>`` that names the
field and the value. ``cells()`` are the complete configs, one per value.

``sweep()`` trains every cell to the end. Each cell is, bit for bit, the single run of its
config: a sweep over single-layer hidden sizes goes through the fused comparison
(compare.py, proven equal to single runs); every other field (those that change the data,
the architecture, or the update) trains each cell as its own Trainer.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from boundarylab.engine.config import LIMITS_CONTEXT_KEY, RunConfig
from boundarylab.engine.strict_model import StrictModel

MAX_SWEEP_VALUES = 12
# What the page offers to vary (any field of RunConfig can be swept through the API and CLI).
SWEEP_FIELDS: dict[str, str] = {
    "model.hidden_sizes": "hidden layer sizes",
    "training.reg_lambda": "λ",
    "training.regularization": "regularisation",
    "training.learning_rate": "learning rate",
    "training.optimizer": "optimiser",
    "model.activation": "activation",
    "model.features": "input features",
    "training.batch_size": "batch size",
    "dataset.noise": "data noise",
    "dataset.seed": "data seed",
}


def field_paths() -> list[str]:
    """Every ``section.field`` of RunConfig."""
    return [
        f"{section}.{name}"
        for section, info in RunConfig.model_fields.items()
        for name in info.annotation.model_fields  # type: ignore[union-attr]
    ]


def with_value(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The JSON config ``base`` with the field at ``path`` set to ``value`` (a new dict).
    A hidden-size sweep may give a single size ``h`` for ``[h]``."""
    section, name = path.split(".")
    if path == "model.hidden_sizes" and isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    return {**base, section: {**base.get(section, {}), name: value}}


def _error(loc: tuple[str | int, ...], kind: str, message: str, given: Any, **ctx: Any) -> Any:
    return InitErrorDetails(
        type=PydanticCustomError(kind, message, ctx or None),  # type: ignore[arg-type]
        loc=loc,
        input=given,
    )


class SweepConfig(StrictModel):
    """One run of ``base`` per value of the field at ``field`` (a dotted path)."""

    base: RunConfig = Field(default_factory=RunConfig)
    field: str = Field(
        "training.reg_lambda",
        description="The setting that varies, by its dotted path in the run config.",
        json_schema_extra={"x-offered": SWEEP_FIELDS},
    )
    values: list[Any] = Field(
        min_length=1,
        max_length=MAX_SWEEP_VALUES,
        description="The values the field takes, one cell each; each valid for the field.",
    )

    @model_validator(mode="before")
    @classmethod
    def _missing_base_validates_too(cls, data: object) -> object:
        if isinstance(data, dict) and "base" not in data:
            return {**data, "base": {}}
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _values_fit_the_field(cls, data: Any, handler: Any, info: Any) -> SweepConfig:
        sweep = handler(data)
        if sweep.field not in field_paths():
            known = ", ".join(field_paths())
            raise ValidationError.from_exception_data("SweepConfig", [_error(
                ("field",), "unknown_field", "{field} is not a field of the run config "
                "(one of: {known})", sweep.field, field=sweep.field, known=known)])  # fmt: skip
        sweep._cells = sweep._validate_cells(info.context)
        return sweep  # type: ignore[no-any-return]

    def _validate_cells(self, context: dict[str, Any] | None) -> list[RunConfig]:
        base = self.base.model_dump(mode="json")
        cells, errors, seen = [], [], []
        for i, value in enumerate(self.values):
            try:
                cell = RunConfig.model_validate(
                    with_value(base, self.field, value), context=context
                )
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                errors.append(_error(("values", i), "sweep_value",
                              "{field} = {value} is not valid: {where}: {msg}", value,
                              field=self.field, value=json.dumps(value), where=where,
                              msg=first["msg"]))  # fmt: skip
                continue
            swept = self.value_of(cell)
            if swept in seen:
                message = "{field} = {value} is given twice"
                errors.append(_error(("values", i), "sweep_value", message, value,
                                     field=self.field, value=json.dumps(value)))  # fmt: skip
            seen.append(swept)
            cells.append(cell)
        if errors:
            raise ValidationError.from_exception_data("SweepConfig", errors)
        return cells

    def value_of(self, cell: RunConfig) -> Any:
        """The swept field's value in ``cell`` (as JSON)."""
        section, name = self.field.split(".")
        return cell.model_dump(mode="json")[section][name]

    def cells(self) -> list[RunConfig]:
        """One complete config per value, in the order given."""
        return list(self._cells)

    _cells: list[RunConfig] = PrivateAttr(default_factory=list)


def validate_sweep(data: dict[str, Any], limits: Any = None) -> SweepConfig:
    """A SweepConfig from JSON (against a deployment's ``limits`` when given)."""
    context = {LIMITS_CONTEXT_KEY: limits} if limits is not None else None
    return SweepConfig.model_validate(data, context=context)


def result_row(value: Any, report: Any, seconds: float, message: str | None) -> dict[str, Any]:
    """One cell's final metrics (test ones only with a test split)."""
    row: dict[str, Any] = {"value": value, "iteration": report.iteration, "loss": report.loss,
                           "train_accuracy": report.train_accuracy}  # fmt: skip
    if report.test_loss is not None:
        row.update(test_loss=report.test_loss, test_accuracy=report.test_accuracy)
    return {**row, "seconds": seconds, "message": message}


def train_cell(config: RunConfig) -> tuple[Any, float, str | None]:
    """Train one cell alone to the end: (final Progress, seconds, divergence message)."""
    from boundarylab.engine.training import Trainer

    started = time.perf_counter()
    trainer = Trainer(config)
    trainer.advance(trainer.total)
    return trainer.report(), time.perf_counter() - started, trainer.diverged_message


def _fusable_sizes(sweep: SweepConfig) -> list[int] | None:
    """The sizes when the sweep is the article's comparison (one hidden layer each)."""
    if sweep.field != "model.hidden_sizes":
        return None
    sizes = [cell.model.hidden_sizes for cell in sweep.cells()]
    return [s[0] for s in sizes] if all(len(s) == 1 for s in sizes) else None


def sweep(config: SweepConfig, *, processes: int = 1) -> list[dict[str, Any]]:
    """Train every cell; per cell, in order: ``value`` (the swept field's), ``iteration``,
    ``loss``, ``train_accuracy`` (and ``test_loss``/``test_accuracy`` with a split),
    ``seconds`` and ``message`` (None, or why it diverged)."""
    values = [config.value_of(cell) for cell in config.cells()]
    sizes = _fusable_sizes(config)
    if sizes is not None:
        from boundarylab.engine.compare import compare

        rows = compare(config.base, sizes, processes=processes)
        return [{"value": value, **{k: v for k, v in row.items() if k != "hidden_size"}}
                for value, row in zip(values, rows, strict=True)]  # fmt: skip
    cells = config.cells()
    if processes > 1 and len(cells) > 1:
        with ProcessPoolExecutor(max_workers=min(processes, len(cells))) as pool:
            results = list(pool.map(train_cell, cells))
    else:
        results = [train_cell(cell) for cell in cells]
    return [result_row(value, *result) for value, result in zip(values, results, strict=True)]
