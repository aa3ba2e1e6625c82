"""The one declarative description of a training run.

`RunConfig` is read by the engine, the HTTP API (request body and `GET /api/schema`), the
command line and the page's form, so every default, limit and help text is written once, in
the module of the section it belongs to: config_dataset.py, config_model.py,
config_training.py and config_view.py (each built on strict_model.py). This module puts the
sections together, checks what spans them, and re-exports what callers import from it.
The defaults are the article's network: 300 moons points, one hidden layer of 3 tanh units,
softmax + cross-entropy, L2 λ = 0.01, learning rate 0.01 on the summed gradient, 20000 steps.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

# Re-exported (the `X as X` form): callers import every part of the schema from here.
from boundarylab.engine.config_dataset import GENERATED_KINDS as GENERATED_KINDS
from boundarylab.engine.config_dataset import KIND_DEFAULTS as KIND_DEFAULTS
from boundarylab.engine.config_dataset import DatasetConfig as DatasetConfig
from boundarylab.engine.config_dataset import DatasetKind as DatasetKind
from boundarylab.engine.config_dataset import GeneratedKind as GeneratedKind
from boundarylab.engine.config_model import MAX_HIDDEN_LAYERS as MAX_HIDDEN_LAYERS
from boundarylab.engine.config_model import MAX_HIDDEN_UNITS as MAX_HIDDEN_UNITS
from boundarylab.engine.config_model import Activation as Activation
from boundarylab.engine.config_model import FeatureName as FeatureName
from boundarylab.engine.config_model import HiddenSize as HiddenSize
from boundarylab.engine.config_model import LossName as LossName
from boundarylab.engine.config_model import ModelConfig as ModelConfig
from boundarylab.engine.config_training import MAX_REPORTS as MAX_REPORTS
from boundarylab.engine.config_training import OptimizerName as OptimizerName
from boundarylab.engine.config_training import Regularization as Regularization
from boundarylab.engine.config_training import TrainingConfig as TrainingConfig
from boundarylab.engine.config_view import MAX_RESOLUTION as MAX_RESOLUTION
from boundarylab.engine.config_view import MIN_RESOLUTION as MIN_RESOLUTION
from boundarylab.engine.config_view import ViewConfig as ViewConfig
from boundarylab.engine.limits import LIMITED_FIELDS
from boundarylab.engine.limits import LIMITS_CONTEXT_KEY as LIMITS_CONTEXT_KEY
from boundarylab.engine.limits import MAX_ITERATIONS as MAX_ITERATIONS
from boundarylab.engine.limits import MAX_SAMPLES as MAX_SAMPLES
from boundarylab.engine.limits import Limits as Limits
from boundarylab.engine.strict_model import StrictModel

# The base's name before the split (sweep.py and other schemas derive from it).
_Strict = StrictModel


class RunConfig(StrictModel):
    """Everything that defines one training run. Every field is optional: defaults fill in."""

    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    view: ViewConfig = Field(default_factory=ViewConfig)

    @model_validator(mode="before")
    @classmethod
    def _missing_sections_validate_too(cls, data: object) -> object:
        # A missing section is validated from {} rather than built by its default factory
        # (which sees no validation context), so a deployment's limits apply to defaults too.
        if isinstance(data, dict):
            missing = {name: {} for name in cls.model_fields if name not in data}
            if missing:
                return {**data, **missing}
        return data

    @model_validator(mode="after")
    def _batch_fits_training_set(self) -> RunConfig:
        batch, n = self.training.batch_size, self.dataset.size
        if batch is not None and batch > n:
            # A ValidationError keeps the loc on the field (a ValueError would blame the
            # whole config), so the API's 422 and the command line's message name it.
            error = PydanticCustomError(
                "less_than_equal",
                "Input should be less than or equal to {size} ({le}); an empty batch_size is "
                "the full batch",
                {
                    "le": n,
                    "size": "dataset.n_samples"
                    if self.dataset.points is None
                    else "the number of dataset.points",
                },
            )
            loc = ("training", "batch_size")
            raise ValidationError.from_exception_data(
                "RunConfig", [InitErrorDetails(type=error, loc=loc, input=batch)]
            )
        return self


class CompareConfig(StrictModel):
    """Train one run per hidden size on the same data (the article's comparison figure)."""

    base: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="before")
    @classmethod
    def _missing_base_validates_too(cls, data: object) -> object:
        if isinstance(data, dict) and "base" not in data:
            return {**data, "base": {}}
        return data

    hidden_sizes: list[HiddenSize] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 20, 50],
        json_schema_extra={"default": [1, 2, 3, 4, 5, 20, 50]},
        min_length=1,
        max_length=12,
        description="One single-hidden-layer run per size.",
    )

    @field_validator("hidden_sizes")
    @classmethod
    def _no_duplicates(cls, sizes: list[int]) -> list[int]:
        if len(set(sizes)) != len(sizes):
            raise ValueError("hidden sizes must be different from each other")
        return sizes


def schema_with_limits(limits: Limits) -> dict[str, Any]:
    """RunConfig's JSON schema with this deployment's lower maxima in place of the ceilings,
    so a client reads the limits actually in force."""
    schema = RunConfig.model_json_schema()
    for (model, field), attribute in LIMITED_FIELDS.items():
        prop = schema["$defs"][model]["properties"][field]
        for node in [prop, *prop.get("anyOf", [])]:
            for key in ("maximum", "maxItems"):
                if key in node:
                    node[key] = min(node[key], getattr(limits, attribute))
    return schema
