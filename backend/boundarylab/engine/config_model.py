"""RunConfig's ``model`` section: the network's shape, non-linearity, loss and input features."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from boundarylab.engine.strict_model import StrictModel

MAX_HIDDEN_LAYERS = 6
MAX_HIDDEN_UNITS = 256
Activation = Literal["tanh", "sigmoid", "relu", "linear"]
LossName = Literal["cross_entropy", "squared_error"]
# Hand-made input features (features.py computes them), in the order the page offers them.
FeatureName = Literal["x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"]

HiddenSize = Annotated[int, Field(ge=1, le=MAX_HIDDEN_UNITS)]


class ModelConfig(StrictModel):
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
