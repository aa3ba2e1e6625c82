"""The run schema (config.py): strict numbers, the report rule, deployment limits passed as
validation context, the schema those limits state, features and regularisation fields."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from boundarylab.engine.config import (
    MAX_ITERATIONS,
    MAX_REPORTS,
    MAX_SAMPLES,
    CompareConfig,
    DatasetConfig,
    Limits,
    RunConfig,
    schema_with_limits,
)

LIMITS = Limits(max_samples=1000, max_iterations=50_000)


def errors(exc_info: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple, str]]:
    return [(tuple(e["loc"]), e["msg"]) for e in exc_info.value.errors()]


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("training", "iterations", True),
        ("training", "report_every", False),
        ("training", "learning_rate", True),
        ("dataset", "n_samples", True),
        ("dataset", "noise", False),
        ("view", "max_fps", True),
        ("training", "batch_size", True),
        ("training", "steps_per_second", True),
        ("model", "hidden_sizes", [3, True]),
    ],
)
def test_a_boolean_is_not_a_number(section, field, value) -> None:
    with pytest.raises(ValidationError) as exc_info:
        RunConfig.model_validate({section: {field: value}})
    assert errors(exc_info)[0][0] == (section, field)
    with pytest.raises(ValidationError):
        RunConfig.model_validate_json(json.dumps({section: {field: value}}))


@pytest.mark.parametrize("text", ['{"training": {"iterations": "5"}}',
                                  '{"training": {"learning_rate": "0.1"}}'])  # fmt: skip
def test_a_string_is_not_a_number(text) -> None:
    with pytest.raises(ValidationError):
        RunConfig.model_validate_json(text)
    with pytest.raises(ValidationError):
        RunConfig.model_validate(json.loads(text))  # what FastAPI hands over


def test_a_whole_float_is_still_an_integer_and_a_fraction_is_not() -> None:
    config = RunConfig.model_validate_json('{"dataset": {"n_samples": 300.0}}')
    assert config.dataset.n_samples == 300 and isinstance(config.dataset.n_samples, int)
    with pytest.raises(ValidationError):
        RunConfig.model_validate_json('{"dataset": {"n_samples": 300.5}}')


def test_an_integer_is_still_a_float() -> None:
    config = RunConfig.model_validate_json(
        '{"training": {"learning_rate": 1}, "view": {"max_fps": 5}}'
    )
    assert config.training.learning_rate == 1.0 and isinstance(config.training.learning_rate, float)
    assert config.view.max_fps == 5.0


def test_report_every_allows_at_most_max_reports() -> None:
    ok = RunConfig.model_validate({"training": {"iterations": 200_000, "report_every": 10}})
    assert ok.training.iterations // ok.training.report_every == MAX_REPORTS
    with pytest.raises(ValidationError) as exc_info:
        RunConfig.model_validate({"training": {"iterations": 200_000, "report_every": 9}})
    [(loc, msg)] = errors(exc_info)
    assert loc == ("training", "report_every") and "greater than or equal to 10" in msg
    assert exc_info.value.errors()[0]["ctx"]["ge"] == 10
    # ceil(20001 / 20000) = 2
    with pytest.raises(ValidationError):
        RunConfig.model_validate({"training": {"iterations": 20_001, "report_every": 1}})


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


def test_features_field() -> None:
    assert RunConfig().model.features == ["x1", "x2"]
    schema = RunConfig.model_json_schema()["$defs"]["ModelConfig"]["properties"]["features"]
    assert schema["type"] == "array" and schema["uniqueItems"] is True and schema["minItems"] == 1
    assert schema["items"]["enum"][:2] == ["x1", "x2"] and schema["default"] == ["x1", "x2"]
    for bad in (["x1", "x3"], ["x1", "x1"], []):
        with pytest.raises(ValidationError) as exc_info:
            RunConfig.model_validate({"model": {"features": bad}})
        assert all(loc[:2] == ("model", "features") for loc, _ in errors(exc_info)), bad


def test_regularization_field() -> None:
    assert RunConfig().training.regularization == "l2"  # the article's
    assert (
        RunConfig.model_validate({"training": {"regularization": "l1"}}).training.regularization
        == "l1"
    )
    with pytest.raises(ValidationError):
        RunConfig.model_validate({"training": {"regularization": "l3"}})
    props = RunConfig.model_json_schema()["$defs"]["TrainingConfig"]["properties"]
    assert props["regularization"]["enum"] == ["none", "l1", "l2"]
    assert props["reg_lambda"]["x-applies-when"] == {"regularization": ["l1", "l2"]}
    assert props["report_every"]["x-max-reports"] == MAX_REPORTS
