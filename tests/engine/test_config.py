"""The run schema (config.py): numbers that are numbers, the report rule, features and
regularisation fields (deployment limits: test_limits.py)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from boundarylab.engine.config import (
    MAX_REPORTS,
    Limits,
    RunConfig,
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
