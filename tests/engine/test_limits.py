"""Deployment limits (limits.py): passed as validation context, checked by the schema on the
field itself, stated by schema_with_limits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from boundarylab.engine.config import (
    CompareConfig,
    DatasetConfig,
    Limits,
    RunConfig,
    schema_with_limits,
)
from boundarylab.engine.limits import MAX_ITERATIONS, MAX_SAMPLES

LIMITS = Limits(max_samples=1000, max_iterations=50_000)


def errors(exc_info: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple, str]]:
    return [(tuple(e["loc"]), e["msg"]) for e in exc_info.value.errors()]


def test_deployment_limits_come_from_the_validation_context() -> None:
    body = {"dataset": {"n_samples": 1500}, "training": {"iterations": 60_000}}
    assert RunConfig.model_validate(body).dataset.n_samples == 1500  # no context: ceilings only
    with pytest.raises(ValidationError) as exc_info:
        RunConfig.model_validate(body, context={"limits": LIMITS})
    limit = "Input should be less than or equal to {} (this server's limit)"
    assert errors(exc_info) == [
        (("dataset", "n_samples"), limit.format(1000)),
        (("training", "iterations"), limit.format(50000)),
    ]
    assert [e["ctx"] for e in exc_info.value.errors()] == [{"le": 1000}, {"le": 50000}]
    assert RunConfig.model_validate({"dataset": {"n_samples": 1000}}, context={"limits": LIMITS})


def test_limits_apply_to_defaults_too() -> None:
    with pytest.raises(ValidationError) as exc_info:
        RunConfig.model_validate({}, context={"limits": Limits(max_iterations=1000)})
    assert errors(exc_info)[0][0] == ("training", "iterations")


def test_the_dataset_part_validates_alone_with_limits() -> None:
    # The dataset preview: only the dataset part, none of a run's other rules.
    assert DatasetConfig.model_validate({"n_samples": 900}, context={"limits": LIMITS})
    with pytest.raises(ValidationError) as exc_info:
        DatasetConfig.model_validate({"n_samples": 1001}, context={"limits": LIMITS})
    assert errors(exc_info)[0][0] == ("n_samples",)
    ok = DatasetConfig.model_validate(
        {"n_samples": 5}, context={"limits": Limits(max_iterations=1)}
    )
    assert ok.n_samples == 5


def test_the_comparison_validates_its_base_with_limits() -> None:
    with pytest.raises(ValidationError) as exc_info:
        CompareConfig.model_validate({"base": {"dataset": {"n_samples": 2000}}},
                                     context={"limits": LIMITS})  # fmt: skip
    assert errors(exc_info)[0][0] == ("base", "dataset", "n_samples")


def test_batch_size_follows_the_limit_and_the_number_of_points() -> None:
    with pytest.raises(ValidationError) as exc_info:
        RunConfig.model_validate({"training": {"batch_size": 1200}}, context={"limits": LIMITS})
    assert ("training", "batch_size") in [loc for loc, _ in errors(exc_info)]
    with pytest.raises(ValidationError) as exc_info:
        RunConfig.model_validate({"dataset": {"n_samples": 10}, "training": {"batch_size": 20}})
    [(loc, msg)] = errors(exc_info)
    assert loc == ("training", "batch_size") and "n_samples (10)" in msg


@pytest.mark.parametrize(
    "kwargs",
    [{"max_samples": MAX_SAMPLES + 1}, {"max_iterations": MAX_ITERATIONS + 1},
     {"max_samples": 1}, {"max_iterations": 0}, {"max_samples": True}, {"max_iterations": 2.5}],
)  # fmt: skip
def test_limits_may_only_lower_the_ceilings(kwargs) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Limits(**kwargs)


def test_a_wrong_context_is_a_programming_error_not_a_422() -> None:
    with pytest.raises(TypeError, match="Limits"):
        RunConfig.model_validate({}, context={"limits": {"max_samples": 10}})


def test_schema_with_limits_states_the_limits_in_force() -> None:
    plain = RunConfig.model_json_schema()
    lowered = schema_with_limits(LIMITS)
    dataset, training = (
        lowered["$defs"][m]["properties"] for m in ("DatasetConfig", "TrainingConfig")
    )
    assert dataset["n_samples"]["maximum"] == 1000
    assert training["iterations"]["maximum"] == 50_000
    assert {"type": "integer", "minimum": 1, "maximum": 1000} in training["batch_size"]["anyOf"]
    assert plain["$defs"]["DatasetConfig"]["properties"]["n_samples"]["maximum"] == MAX_SAMPLES
    assert schema_with_limits(Limits()) == plain  # the ceilings themselves: nothing changes
