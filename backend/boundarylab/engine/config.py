"""The one declarative description of a training run.

`RunConfig` is read by the engine, the HTTP API (request body and `GET /api/schema`), the
command line and the page's form, so every default, limit and help text is written here once.
The defaults are the article's network: 300 moons points, one hidden layer of 3 tanh units,
softmax + cross-entropy, L2 λ = 0.01, learning rate 0.01 on the summed gradient, 20000 steps.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Hard ceilings of the schema. Deployment settings (see settings.py) may lower some of them,
# never raise them: a config valid here is one the engine can always run.
MAX_SAMPLES = 5000
MAX_HIDDEN_LAYERS = 6
MAX_HIDDEN_UNITS = 256
MAX_ITERATIONS = 200_000
MIN_RESOLUTION = 20
MAX_RESOLUTION = 300

DatasetKind = Literal["moons", "circles", "xor", "gaussian", "spiral", "blobs"]
Activation = Literal["tanh", "sigmoid", "relu", "linear"]
LossName = Literal["cross_entropy", "squared_error"]
OptimizerName = Literal["gd", "momentum", "adam"]


class _Strict(BaseModel):
    # Unknown fields are an error, not silently dropped: a typo must not train the default.
    # NaN/Infinity are refused for every float field.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


# A data set's own defaults where the general one would hide its shape: at noise 0.2 the
# spiral's arms (0.29 apart) blur into one cloud. Applied when the field is not given; the
# page reads them from the schema ("x-kind-defaults") when a person picks another kind.
KIND_DEFAULTS: dict[str, dict[str, float]] = {"spiral": {"noise": 0.05}}


class DatasetConfig(_Strict):
    """Which points to learn from."""

    model_config = ConfigDict(json_schema_extra={"x-kind-defaults": KIND_DEFAULTS})

    kind: DatasetKind = Field(
        "moons",
        description="Shape of the data: two interleaving half-moons (the article), two "
        "concentric circles, XOR quadrants, two gaussian blobs, a two-arm spiral, or 2–5 blobs.",
    )
    n_samples: int = Field(
        300, ge=2, le=MAX_SAMPLES, description="Number of points, train and test together."
    )
    noise: float = Field(
        0.2, ge=0.0, le=2.0, description="Standard deviation of the gaussian noise on each point."
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


class TrainingConfig(_Strict):
    """How the network learns."""

    learning_rate: float = Field(
        0.01,
        gt=0.0,
        le=10.0,
        description="Step size ε, applied to the summed (not averaged) gradient, as the article.",
    )
    reg_lambda: float = Field(
        0.01,
        ge=0.0,
        le=10.0,
        description="L2 regularisation strength λ on the weights (not biases).",
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
        100, ge=1, le=MAX_ITERATIONS, description="Report loss and accuracy every this many steps."
    )
    steps_per_second: float | None = Field(
        None,
        gt=0.0,
        le=1_000_000.0,
        description="Pace of training so a person can watch; empty = as fast as the machine goes.",
    )


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

    @model_validator(mode="after")
    def _batch_fits_training_set(self) -> RunConfig:
        batch = self.training.batch_size
        if batch is not None and batch > self.dataset.n_samples:
            raise ValueError(
                f"training.batch_size ({batch}) is larger than dataset.n_samples "
                f"({self.dataset.n_samples}); leave it empty for the full batch"
            )
        return self


class CompareConfig(_Strict):
    """Train one run per hidden size on the same data (the article's comparison figure)."""

    base: RunConfig = Field(default_factory=RunConfig)
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
