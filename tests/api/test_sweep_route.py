"""POST /api/sweeps: a sweep's field and values checked against the schema, cells answered."""

from __future__ import annotations

from api_support import FakeRun, make_client
from fastapi.testclient import TestClient

from boundarylab.engine.config import RunConfig


def test_a_sweep_answers_each_cells_config(fake_client: TestClient) -> None:
    body = {"base": {"training": {"iterations": 500}}, "field": "training.reg_lambda",
            "values": [0, 0.01, 0.1]}  # fmt: skip
    answer = fake_client.post("/api/sweeps", json=body)
    assert answer.status_code == 200
    plan = answer.json()
    assert plan["field"] == "training.reg_lambda" and plan["values"] == [0.0, 0.01, 0.1]
    expected = RunConfig(training={"iterations": 500, "reg_lambda": 0.1}).model_dump(mode="json")
    assert plan["cells"][2] == expected


def test_a_bad_value_is_422_naming_the_field_and_the_value(fake_client: TestClient) -> None:
    body = {"field": "training.learning_rate", "values": [0.01, 0, 0.01]}
    detail = fake_client.post("/api/sweeps", json=body).json()["detail"]
    assert [d["loc"] for d in detail] == [["body", "values", 1], ["body", "values", 2]]
    assert "training.learning_rate = 0 is not valid" in detail[0]["msg"]
    assert "given twice" in detail[1]["msg"]


def test_an_unknown_field_is_422_on_field(fake_client: TestClient) -> None:
    detail = fake_client.post("/api/sweeps", json={"field": "model.depth", "values": [1]})
    assert detail.status_code == 422
    [error] = detail.json()["detail"]
    assert error["loc"] == ["body", "field"] and "model.depth" in error["msg"]


def test_a_value_over_this_servers_limit_is_422_on_that_value() -> None:
    with make_client(FakeRun, max_iterations=1000) as client:
        body = {"base": {"training": {"iterations": 500}}, "field": "training.iterations",
                "values": [100, 2000]}  # fmt: skip
        answer = client.post("/api/sweeps", json=body)
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "values", 1] and "training.iterations = 2000" in error["msg"]


def test_the_schema_offers_the_sweepable_fields(fake_client: TestClient) -> None:
    sweep = fake_client.get("/api/schema").json()["x-sweep"]
    assert "training.reg_lambda" in sweep["fields"] and sweep["max_values"] == 12
