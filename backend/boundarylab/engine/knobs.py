"""Knobs that turn while a run trains: the learning rate, λ and the pace.

``RunPatch`` is the body of a change, ``{"training": {...}}``, as ``PATCH /api/runs/{id}``
takes it and as the socket action ``{"action": "set", "training": {...}}`` carries it. Only
``training.learning_rate``, ``reg_lambda`` and ``steps_per_second`` may change; each keeps
the bounds of RunConfig's training section (the same Field constraints, read from it, so a
bound is written once), and non-finite numbers are refused. Any other field is refused on
its own path with a message that says it needs a new run.

``Retune`` is a validated change as the engine applies it (runloop.RunStepper.command, from
the next step on); ``KnobsChanged`` (events.py) is what the run reports once it applied one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from boundarylab.engine.config import TrainingConfig

KNOBS: tuple[str, ...] = ("learning_rate", "reg_lambda", "steps_per_second")
# Changes one run may take: each is kept in its record (history, snapshot, exports), and
# the command rate alone would allow 20 a second for an hour.
MAX_CHANGES = 500


def _bounded(name: str) -> Any:
    """A strict, finite float with the bounds ``TrainingConfig.<name>`` has."""
    info = TrainingConfig.model_fields[name]
    return Annotated[(float, *info.metadata, Field(strict=True, allow_inf_nan=False))]


def _described(name: str) -> Any:
    return Field(None, description=TrainingConfig.model_fields[name].description)


class TrainingKnobs(BaseModel):
    """What may change in a run's training while it trains; at least one field."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    learning_rate: _bounded("learning_rate") | None = _described("learning_rate")  # type: ignore[valid-type]
    reg_lambda: _bounded("reg_lambda") | None = _described("reg_lambda")  # type: ignore[valid-type]
    steps_per_second: _bounded("steps_per_second") | None = Field(  # type: ignore[valid-type]
        None,
        description="Pace of training in steps per second. A running run's pace can change "
        "but not be removed: as fast as the machine goes needs a new run.",
    )

    @field_validator(*KNOBS, mode="before")
    @classmethod
    def _null_is_not_a_change(cls, value: Any) -> Any:
        # Leaving a field out keeps its value; null would read as "back to the default",
        # which for the pace is "unpaced": a different kind of run (see capacity.py).
        if value is None:
            raise PydanticCustomError(
                "knob_null", "a number is needed here; leave the field out to keep its value"
            )
        return value

    @model_validator(mode="after")
    def _something_changes(self) -> TrainingKnobs:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "knobs_empty", "give at least one of {fields}", {"fields": ", ".join(KNOBS)}
            )
        return self

    def retune(self) -> Retune:
        """The change as the engine applies it: only the fields given."""
        return Retune(**{name: getattr(self, name) for name in self.model_fields_set})


class RunPatch(BaseModel):
    """``{"training": {...}}``: a change to a running or paused run (see TrainingKnobs)."""

    model_config = ConfigDict(extra="forbid")

    training: TrainingKnobs

    @model_validator(mode="before")
    @classmethod
    def _other_fields_need_a_new_run(cls, data: Any) -> Any:
        # Said per field, on its own path: "Extra inputs are not permitted" would not tell
        # a person that the field is fine, just not changeable mid-run.
        if not isinstance(data, dict):
            return data
        training = data.get("training")
        others = [(key,) for key in data if key != "training"]
        if isinstance(training, dict):
            others += [("training", key) for key in training if key not in KNOBS]
        if others:
            raise ValidationError.from_exception_data(
                "RunPatch",
                [InitErrorDetails(type=_fixed(at), loc=at, input=_at(data, at)) for at in others],
            )
        return data


def _fixed(loc: tuple[str, ...]) -> PydanticCustomError:
    return PydanticCustomError(
        "knob_fixed",
        "only training.learning_rate, training.reg_lambda and training.steps_per_second can "
        "change while a run trains; {field} needs a new run",
        {"field": ".".join(loc)},
    )


def _at(data: dict[str, Any], loc: tuple[str, ...]) -> Any:
    for key in loc:
        data = data[key]
    return data


@dataclass(frozen=True, slots=True)
class Retune:
    """A change of a run's learning rate, λ and/or pace (None: unchanged), applied from the
    next step on. Plain data: it travels to a worker inside ``protocol.Control``."""

    learning_rate: float | None = None
    reg_lambda: float | None = None
    steps_per_second: float | None = None

    def given(self) -> dict[str, float]:
        """The fields this change sets, by name."""
        values = {name: getattr(self, name) for name in KNOBS}
        return {name: value for name, value in values.items() if value is not None}
