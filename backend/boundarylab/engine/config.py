"""The one declarative description of a training run.

`RunConfig` is read by the engine, the HTTP API (request body and `GET /api/schema`), the
command line and the page's form, so every default, limit and help text is written here once.
The defaults are the article's network: 300 moons points, one hidden layer of 3 tanh units,
softmax + cross-entropy, L2 λ = 0.01, learning rate 0.01 on the summed gradient, 20000 steps.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticKnownError

from boundarylab.engine.limits import LIMITED_FIELDS, within_deployment_limit
from boundarylab.engine.limits import LIMITS_CONTEXT_KEY as LIMITS_CONTEXT_KEY  # re-exported
from boundarylab.engine.limits import MAX_ITERATIONS as MAX_ITERATIONS
from boundarylab.engine.limits import MAX_SAMPLES as MAX_SAMPLES
from boundarylab.engine.limits import Limits as Limits
from boundarylab.engine.points import (
    MAX_COORDINATE,
    MAX_CUSTOM_CLASSES,
    MIN_CUSTOM_POINTS,
    CustomPoint,
    check_points,
    points_error,
)

# Hard ceilings of the schema (MAX_SAMPLES and MAX_ITERATIONS live in limits.py, as a
# deployment may lower them): a config valid here is one the engine can always run.
MAX_HIDDEN_LAYERS = 6
MAX_HIDDEN_UNITS = 256
MIN_RESOLUTION = 20
MAX_RESOLUTION = 300
# Progress reports a run may send: the history a late viewer's snapshot carries stays a few
# MB. So report_every must be at least ceil(iterations / MAX_REPORTS).
MAX_REPORTS = 20_000

GeneratedKind = Literal["moons", "circles", "xor", "gaussian", "spiral", "blobs"]
# "custom": the person's own points, given in dataset.points (clicked, uploaded or pasted).
DatasetKind = Literal[GeneratedKind, "custom"]
GENERATED_KINDS: list[str] = list(get_args(GeneratedKind))
Activation = Literal["tanh", "sigmoid", "relu", "linear"]
LossName = Literal["cross_entropy", "squared_error"]
OptimizerName = Literal["gd", "momentum", "adam"]
Regularization = Literal["none", "l1", "l2"]
# Hand-made input features (features.py computes them), in the order the page offers them.
FeatureName = Literal["x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"]


def _number_type(annotation: Any) -> type | None:
    """int or float when a field (or each item of a list field) holds numbers, else None."""
    if annotation in (int, float):
        return annotation  # type: ignore[no-any-return]
    if get_origin(annotation) is tuple:
        return None  # a row of custom points: its strict item types check each number
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Annotated:
        args = args[:1]
    return next((kind for kind in map(_number_type, args) if kind is not None), None)


class _Strict(BaseModel):
    # Unknown fields are an error, not silently dropped: a typo must not train the default.
    # NaN/Infinity are refused for every float field.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_only(cls, value: Any, info: ValidationInfo) -> Any:
        # A number field takes numbers: `true` is not 1 and "3" is not 3 (pydantic's lax mode
        # would take both). 300.0 stays a valid integer and 1 a valid float.
        kind = _number_type(cls.model_fields[str(info.field_name)].annotation)
        items = value if isinstance(value, list) else [value]
        if kind is not None and any(isinstance(v, bool | str | bytes) for v in items):
            raise PydanticKnownError("int_type" if kind is int else "float_type")
        return value


# A data set's own defaults where the general one would hide its shape: at noise 0.2 the
# spiral's arms (0.29 apart) blur into one cloud. Applied when the field is not given; the
# page reads them from the schema ("x-kind-defaults") when a person picks another kind.
KIND_DEFAULTS: dict[str, dict[str, float]] = {"spiral": {"noise": 0.05}}


_APPLIES_TO_GENERATED = {"x-applies-when": {"kind": GENERATED_KINDS}}


class DatasetConfig(_Strict):
    """Which points to learn from."""

    model_config = ConfigDict(json_schema_extra={"x-kind-defaults": KIND_DEFAULTS})

    kind: DatasetKind = Field(
        "moons",
        description="Shape of the data: two interleaving half-moons (the article), two "
        "concentric circles, XOR quadrants, two gaussian blobs, a two-arm spiral, or 2–5 blobs.",
    )
    n_samples: int = Field(
        300,
        ge=2,
        le=MAX_SAMPLES,
        description="Number of points, train and test together (not used by 'custom' data: "
        "its points are given).",
        json_schema_extra=_APPLIES_TO_GENERATED,
    )
    noise: float = Field(
        0.2,
        ge=0.0,
        le=2.0,
        description="Standard deviation of the gaussian noise on each point (not used by "
        "'custom' data).",
        json_schema_extra=_APPLIES_TO_GENERATED,
    )
    seed: int = Field(
        0, ge=0, le=2**32 - 1, description="Random seed of the data: same seed, same points."
    )
    test_fraction: float = Field(
        0.0,
        ge=0.0,
        le=0.9,
        description="Share of the points held out as a test set (0 = train on all, as the "
        "article does).",
    )
    n_classes: int = Field(
        3,
        ge=2,
        le=5,
        description="Number of classes (only used by the 'blobs' dataset).",
        # The page hides a field whose "x-applies-when" does not match the other fields.
        json_schema_extra={"x-applies-when": {"kind": ["blobs"]}},
    )
    points: list[CustomPoint] | None = Field(
        None,
        description="The points of a 'custom' data set, each [x1, x2, label]: coordinates "
        f"finite with |x| ≤ {MAX_COORDINATE:g}, labels integers 0..K-1 (K from 2 to "
        f"{MAX_CUSTOM_CLASSES}, each class at least one point), {MIN_CUSTOM_POINTS} to "
        f"{MAX_SAMPLES} points. Only with kind 'custom', which requires it. The test split is "
        "drawn with the seed, as for generated data.",
        json_schema_extra={"x-applies-when": {"kind": ["custom"]}, "maxItems": MAX_SAMPLES},
    )

    @property
    def size(self) -> int:
        """Points in the data set, train and test together."""
        return len(self.points) if self.points is not None else self.n_samples

    @property
    def class_count(self) -> int:
        """Classes K: 2 for most shapes, n_classes for blobs, 1 + the largest label for
        custom points."""
        if self.points is not None:
            return 1 + max(label for _, _, label in self.points)
        return self.n_classes if self.kind == "blobs" else 2

    @field_validator("points")
    @classmethod
    def _points_within_limit(
        cls, points: list[tuple[float, float, int]] | None, info: ValidationInfo
    ) -> list[tuple[float, float, int]] | None:
        # Checked here rather than by max_length so that a deployment's lower limit applies.
        if points is not None:
            context = info.context if isinstance(info.context, dict) else {}
            check_points(points, context.get(LIMITS_CONTEXT_KEY) or Limits())
        return points

    @model_validator(mode="after")
    def _points_with_custom_only(self) -> DatasetConfig:
        if self.kind == "custom" and self.points is None:
            points_error("missing", "A 'custom' data set needs its points", ("points",), None)
        if self.kind != "custom" and self.points is not None:
            points_error(
                "extra_forbidden",
                f"points are only for kind 'custom', not {self.kind!r}",
                ("points",),
                None,
            )
        return self

    @field_validator("n_samples")
    @classmethod
    def _deployment_limit(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("kind") == "custom":
            return value  # not used: custom data has its points (limited above)
        return within_deployment_limit(value, info, "DatasetConfig")

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: object) -> object:
        if isinstance(data, dict):
            defaults = KIND_DEFAULTS.get(str(data.get("kind", "moons")), {})
            missing = {k: v for k, v in defaults.items() if k not in data}
            if missing:
                return {**data, **missing}
        return data


HiddenSize = Annotated[int, Field(ge=1, le=MAX_HIDDEN_UNITS)]


class ModelConfig(_Strict):
    """The network's shape."""

    hidden_sizes: list[HiddenSize] = Field(
        default_factory=lambda: [3],
        # A default_factory leaves "default" out of the JSON schema; the page's form reads it.
        json_schema_extra={"default": [3]},
        max_length=MAX_HIDDEN_LAYERS,
        description="Units in each hidden layer, input side first. [] is the part-1 perceptron "
        "(softmax regression: a straight boundary).",
    )
    activation: Activation = Field("tanh", description="Non-linearity of the hidden layers.")
    loss: LossName = Field(
        "cross_entropy",
        description="cross_entropy: softmax outputs with cross-entropy (the article's code); "
        "squared_error: sigmoid outputs with the L2-norm loss the article derives.",
    )
    features: list[FeatureName] = Field(
        default_factory=lambda: ["x1", "x2"],
        json_schema_extra={"default": ["x1", "x2"], "uniqueItems": True},
        min_length=1,
        max_length=len(FeatureName.__args__),  # type: ignore[attr-defined]
        description="What the network sees of each point (x1, x2), in this order: x1, x2 (the "
        "article's), their squares x1_sq and x2_sq, their product x1_x2, sin_x1, sin_x2. "
        "Squares let a network without a hidden layer draw a circle.",
    )

    @field_validator("features")
    @classmethod
    def _each_feature_once(cls, names: list[str]) -> list[str]:
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise PydanticCustomError(
                "unique_items", "Each feature may appear once; {twice} appears more than once",
                {"twice": ", ".join(twice)},
            )  # fmt: skip
        return names


class TrainingConfig(_Strict):
    """How the network learns."""

    learning_rate: float = Field(
        0.01,
        gt=0.0,
        le=10.0,
        description="Step size ε, applied to the summed (not averaged) gradient, as the article.",
    )
    regularization: Regularization = Field(
        "l2",
        description="Penalty on the weights (not biases): l2 adds λ/2·Σ‖W‖² to the summed loss "
        "(the article's); l1 adds λ·Σ|W| and sets weights it pushes across zero to exactly 0; "
        "none.",
    )
    reg_lambda: float = Field(
        0.01,
        ge=0.0,
        le=10.0,
        description="Regularisation strength λ on the weights (not biases).",
        json_schema_extra={"x-applies-when": {"regularization": ["l1", "l2"]}},
    )
    iterations: int = Field(20000, ge=1, le=MAX_ITERATIONS, description="Number of gradient steps.")
    optimizer: OptimizerName = Field(
        "gd", description="gd: plain gradient descent (the article); momentum (0.9); adam."
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=MAX_SAMPLES,
        description="Points per step; empty = the full batch (the article). Mini-batches are "
        "drawn with the training seed.",
    )
    seed: int = Field(
        0, ge=0, le=2**32 - 1, description="Seed of the weight initialisation and mini-batches."
    )
    report_every: int = Field(
        100,
        ge=1,
        le=MAX_ITERATIONS,
        description=f"Report loss and accuracy every this many steps (at most {MAX_REPORTS} "
        "reports a run).",
        json_schema_extra={"x-max-reports": MAX_REPORTS},
    )
    steps_per_second: float | None = Field(
        None,
        gt=0.0,
        le=1_000_000.0,
        description="Pace of training so a person can watch; empty = as fast as the machine goes.",
    )

    @field_validator("iterations", "batch_size")
    @classmethod
    def _deployment_limit(cls, value: int | None, info: ValidationInfo) -> int | None:
        return within_deployment_limit(value, info, "TrainingConfig")

    @field_validator("report_every")
    @classmethod
    def _at_most_max_reports(cls, value: int, info: ValidationInfo) -> int:
        iterations = info.data.get("iterations")  # absent when it was invalid itself
        least = math.ceil(iterations / MAX_REPORTS) if iterations is not None else 1
        if value < least:
            raise PydanticCustomError(
                "greater_than_equal",
                "Input should be greater than or equal to {ge} for {iterations} iterations (at "
                "most {max_reports} progress reports per run)",
                {"ge": least, "iterations": iterations, "max_reports": MAX_REPORTS},
            )
        return value


class ViewConfig(_Strict):
    """How the decision boundary is streamed."""

    resolution: int = Field(
        100,
        ge=MIN_RESOLUTION,
        le=MAX_RESOLUTION,
        description="Cells per side of the decision-boundary grid.",
    )
    max_fps: float = Field(
        20.0, gt=0.0, le=60.0, description="At most this many boundary frames a second."
    )


class RunConfig(_Strict):
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


class CompareConfig(_Strict):
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
