"""RunConfig's ``training`` section: how the network learns (step size, penalty, optimiser,
batches, seed, pace and how often a run reports)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from boundarylab.engine.limits import MAX_ITERATIONS, MAX_SAMPLES, within_deployment_limit
from boundarylab.engine.strict_model import StrictModel

# Progress reports a run may send: the history a late viewer's snapshot carries stays a few
# MB. So report_every must be at least ceil(iterations / MAX_REPORTS).
MAX_REPORTS = 20_000
OptimizerName = Literal["gd", "momentum", "adam"]
Regularization = Literal["none", "l1", "l2"]


class TrainingConfig(StrictModel):
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
