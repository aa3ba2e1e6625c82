"""A deployment's limits: lower maxima for some schema fields, checked during validation.

The schema (config.py) has hard ceilings; a server may allow less (its settings). It passes
its ``Limits`` as pydantic validation context, ``{"limits": Limits(...)}``, and the fields
named in ``LIMITED_FIELDS`` refuse values above them with an error on the field itself, so
limits are checked once, by the schema, wherever a config is validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

# The schema's ceilings for the fields a deployment may lower.
MAX_SAMPLES = 5000
MAX_ITERATIONS = 200_000


@dataclass(frozen=True)
class Limits:
    """One deployment's limits: they may lower the schema's hard ceilings, never raise them.

    Passed as validation context, ``RunConfig.model_validate(data, context={"limits":
    limits})``; without it only the ceilings apply."""

    max_samples: int = MAX_SAMPLES
    max_iterations: int = MAX_ITERATIONS

    def __post_init__(self) -> None:
        for name, low, ceiling in (("max_samples", 2, MAX_SAMPLES),
                                   ("max_iterations", 1, MAX_ITERATIONS)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= ceiling:
                raise ValueError(
                    f"Limits.{name} must be an integer {low} to {ceiling}, got {value!r}"
                )


LIMITS_CONTEXT_KEY = "limits"
# Which schema field each deployment limit lowers: (model, field) -> Limits attribute.
LIMITED_FIELDS: dict[tuple[str, str], str] = {
    ("DatasetConfig", "n_samples"): "max_samples",
    ("TrainingConfig", "iterations"): "max_iterations",
    ("TrainingConfig", "batch_size"): "max_samples",
    ("DatasetConfig", "points"): "max_samples",  # a list: its maxItems (config checks it)
}


def within_deployment_limit(value: Any, info: ValidationInfo, model: str) -> Any:
    """Refuse ``value`` above the limit the validation context's Limits set for this field."""
    context = info.context if isinstance(info.context, dict) else {}
    limits = context.get(LIMITS_CONTEXT_KEY)
    if limits is None or value is None:
        return value
    if not isinstance(limits, Limits):
        raise TypeError(f"context[{LIMITS_CONTEXT_KEY!r}] must be a Limits, not {type(limits)}")
    limit = getattr(limits, LIMITED_FIELDS[(model, str(info.field_name))])
    if value > limit:
        raise PydanticCustomError(
            "less_than_equal",
            "Input should be less than or equal to {le} (this server's limit)",
            {"le": limit},
        )
    return value
