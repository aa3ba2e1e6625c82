"""Own data over the API: dataset kind "custom" with its points, every limit at the limit and
one past it, hostile points, the body cap of the routes that take points, a 5000-point run
end to end, and points never printed in the server's log."""

from __future__ import annotations

import csv
import io
import json
import logging
import math

import numpy as np
import pytest
from api_support import make_client, strict_loads, watch
from fastapi.testclient import TestClient

from boundarylab.engine.config import RunConfig
from boundarylab.engine.training import Trainer
from boundarylab.server.settings import BYTES_PER_POINT, Settings

SHORT = {"iterations": 200, "report_every": 50}


def _points(n: int, classes: int = 2, seed: int = 0) -> list[list[float | int]]:
    rng = np.random.default_rng(seed)
    xy = rng.normal(size=(n, 2)).round(4)
    labels = np.arange(n) % classes
    return [[float(a), float(b), int(c)] for (a, b), c in zip(xy, labels, strict=True)]


def _body(points: object, **dataset: object) -> dict:
    return {"dataset": {"kind": "custom", "points": points, **dataset}, "training": dict(SHORT)}


@pytest.fixture(scope="module")
def client() -> TestClient:
    with make_client() as c:
        yield c


def _error(response) -> dict:
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert len(errors) >= 1
    return errors[0]


def _loc(response) -> list:
    return _error(response)["loc"]


def test_custom_points_train_and_the_preview_is_those_points(client: TestClient) -> None:
    points = _points(40, classes=3)
    preview = client.post("/api/datasets/preview", json={"kind": "custom", "points": points})
    assert preview.status_code == 200, preview.text
    train = preview.json()["train"]
    assert train["x"] == [p[:2] for p in points] and train["y"] == [p[2] for p in points]
    created = client.post("/api/runs", json=_body(points))
    assert created.status_code == 201, created.text
    with client.websocket_connect(created.json()["stream"]) as ws:
        seen = watch(ws.receive_text)
    assert seen.end["status"] == "completed"
    assert seen.frame is not None and seen.frame["encoding"] == "class-conf-uint8-base64"


@pytest.mark.parametrize(
    ("point", "field", "kind"),
    [
        ([math.nan, 0.0, 0], 0, "finite_number"),
        (["1.0", 0.0, 0], 0, "float_type"),
        ([True, 0.0, 0], 0, "float_type"),
        ([0.0, None, 0], 1, "float_type"),
        ([1e4 + 0.01, 0.0, 0], 0, "less_than_equal"),
        ([0.0, -1e4 - 0.01, 0], 1, "greater_than_equal"),
        ([0.0, 1e300, 0], 1, "less_than_equal"),
        ([0.0, 0.0, 5], 2, "less_than_equal"),
        ([0.0, 0.0, -1], 2, "greater_than_equal"),
        ([0.0, 0.0, 0.5], 2, "int_type"),
        ([0.0, 0.0, "a"], 2, "int_type"),
        ([0.0, 0.0, False], 2, "int_type"),
        ([0.0, 0.0], 2, "missing"),
    ],
)
def test_a_bad_number_is_a_422_naming_the_point_and_its_column(
    client: TestClient, point: list, field: int, kind: str
) -> None:
    points = _points(20)
    points[17] = point
    # NaN is not JSON: send it the way Python's json writes it, as a careless client would.
    response = client.post(
        "/api/runs", content=json.dumps(_body(points)), headers={"content-type": "application/json"}
    )
    error = _error(response)
    assert error["loc"] == ["body", "dataset", "points", 17, field] and error["type"] == kind


def test_limits_at_the_limit_and_one_past(client: TestClient) -> None:
    assert (
        client.post("/api/runs", json=_body([[1e4, -1e4, 0], [-1e4, 1e4, 1]] * 2)).status_code
        == 201
    )
    assert (
        client.post("/api/runs", json=_body([[1e-300, 5e-324, 4], *_points(10, 5)])).status_code
        == 201
    )
    # Rows of exactly three; a fourth number is one too many.
    long_row = _points(10)
    long_row[3] = [0.0, 0.0, 1, 7]
    assert _loc(client.post("/api/runs", json=_body(long_row))) == ["body", "dataset", "points", 3]
    # At least 4 points.
    assert client.post("/api/runs", json=_body(_points(4))).status_code == 201
    three = _error(client.post("/api/runs", json=_body(_points(3))))
    assert three["loc"] == ["body", "dataset", "points"] and "At least 4" in three["msg"]
    # At least two classes, each with a point; labels 0..K-1 without a gap.
    one_class = _error(client.post("/api/runs", json=_body([[0.0, float(i), 0] for i in range(9)])))
    assert one_class["loc"] == ["body", "dataset", "points"] and "2 classes" in one_class["msg"]
    gap = _error(
        client.post("/api/runs", json=_body([[0.0, float(i), 2 * (i % 2)] for i in range(9)]))
    )
    assert "no point has label 1" in gap["msg"]
    # Points: a list of rows, only with kind custom, required by it.
    assert _loc(client.post("/api/runs", json=_body({"a": 1}))) == ["body", "dataset", "points"]
    assert _loc(client.post("/api/runs", json=_body([1, 2, 3, 4]))) == [
        "body",
        "dataset",
        "points",
        0,
    ]
    assert _loc(client.post("/api/runs", json={"dataset": {"kind": "custom"}})) == [
        "body", "dataset", "points",
    ]  # fmt: skip
    moons = {"dataset": {"kind": "moons", "points": _points(10)}}
    assert _loc(client.post("/api/runs", json=moons)) == ["body", "dataset", "points"]


def test_at_most_max_samples_points(client: TestClient) -> None:
    full = _points(5000)
    assert (
        client.post("/api/datasets/preview", json={"kind": "custom", "points": full}).status_code
        == 200
    )
    past = client.post("/api/runs", json=_body([*full, [0.0, 0.0, 1]]))
    error = _error(past)
    assert error["loc"] == ["body", "dataset", "points", 5000] and "5000" in error["msg"]


def test_a_deployment_limit_names_the_first_point_past_it() -> None:
    with make_client(max_samples=50) as small:
        assert small.post("/api/runs", json=_body(_points(50))).status_code == 201
        error = _error(small.post("/api/runs", json=_body(_points(51))))
        assert error["loc"] == ["body", "dataset", "points", 50]
        # The schema the page reads states this server's limit, not the schema's ceiling.
        schema = small.get("/api/schema").json()
        assert schema["$defs"]["DatasetConfig"]["properties"]["points"]["maxItems"] == 50


def test_batch_size_past_the_points_names_them(client: TestClient) -> None:
    body = _body(_points(10))
    body["training"]["batch_size"] = 11
    error = _error(client.post("/api/runs", json=body))
    assert error["loc"] == ["body", "training", "batch_size"] and "dataset.points" in error["msg"]


def test_the_test_split_is_seeded_and_a_split_leaving_a_class_untrained_is_refused(
    client: TestClient,
) -> None:
    points = _points(30)
    split = {"kind": "custom", "points": points, "test_fraction": 0.3, "seed": 4}
    first = client.post("/api/datasets/preview", json=split).json()
    again = client.post("/api/datasets/preview", json=split).json()
    assert first == again and len(first["test"]["y"]) == 9
    lonely = [*_points(9, classes=1), [5.0, 5.0, 1]]
    error = _error(client.post("/api/runs", json=_body(lonely, test_fraction=0.9)))
    assert error["loc"] == ["body", "dataset"] and "class 1" in error["msg"]


def _worst_case_body(n: int) -> bytes:
    """n points each as long as a point can be (see settings.BYTES_PER_POINT), written with
    Python's json separators."""
    coordinate = -2.2250738585072014e-308
    assert len(repr(coordinate)) == 24
    points = [[coordinate, coordinate, i % 2] for i in range(n)]
    return json.dumps({"dataset": {"kind": "custom", "points": points}}).encode()


def test_the_data_routes_take_the_largest_data_set_and_nothing_past_their_cap(
    client: TestClient,
) -> None:
    cap = Settings().max_data_body_bytes
    assert cap == 65536 + 5000 * BYTES_PER_POINT == 350536
    body = _worst_case_body(5000)
    # The points take at most 57 bytes each: the rest of the ordinary cap is left over.
    assert len(body) <= 5000 * BYTES_PER_POINT + 100
    headers = {"content-type": "application/json"}
    padded = body[:-1] + b" " * (cap - len(body)) + b"}"
    assert len(padded) == cap
    # Every point at one spot, the smallest normal number: a degenerate but valid data set.
    at_cap = client.post("/api/runs", content=padded, headers=headers)
    assert at_cap.status_code == 201, at_cap.text
    client.post(f"/api/runs/{at_cap.json()['id']}/cancel")
    past = client.post("/api/runs", content=padded + b" ", headers=headers)
    assert past.status_code == 413 and str(cap) in past.json()["detail"]
    # Other routes keep the ordinary cap.
    other = client.post("/api/runs/0123456789abcdef/pause", content=body, headers=headers)
    assert other.status_code == 413


def test_a_5000_point_run_trains_end_to_end_and_matches_a_bare_trainer() -> None:
    body = _body(_points(5000, classes=3, seed=7), test_fraction=0.2, seed=3)
    body["training"] = {"iterations": 300, "report_every": 100, "learning_rate": 0.001}
    with make_client(mode="process", max_running=1) as client:
        created = client.post("/api/runs", json=body)
        assert created.status_code == 201, created.text
        with client.websocket_connect(created.json()["stream"]) as ws:
            seen = watch(ws.receive_text)
        assert seen.end["status"] == "completed"
        assert len(seen.snapshot["dataset"]["train"]["y"]) == 4000
        assert len(seen.snapshot["dataset"]["test"]["y"]) == 1000
    trainer = Trainer(RunConfig.model_validate(body))
    trainer.advance(300)
    assert seen.progress[-1]["loss"] == pytest.approx(trainer.report().loss, rel=1e-12)


def test_the_server_log_never_prints_points(caplog: pytest.LogCaptureFixture) -> None:
    marker = 1234.56789
    points = [*_points(20), [marker, -marker, 1]]
    caplog.set_level(logging.DEBUG)
    with make_client() as client:
        created = client.post("/api/runs", json=_body(points))
        with client.websocket_connect(created.json()["stream"]) as ws:
            watch(ws.receive_text)
        bad = [*points, [0.0, marker, 9]]
        assert client.post("/api/runs", json=_body(bad)).status_code == 422
    text = caplog.text
    assert "custom n=21" in text  # the run's line was logged, without its points
    assert "1234.5" not in text and str(points[0][0]) not in text


def test_the_run_list_carries_no_points(client: TestClient) -> None:
    marker = 4321.98765
    created = client.post("/api/runs", json=_body([*_points(8), [marker, 0.0, 1]]))
    assert created.status_code == 201
    assert "4321.9" not in client.get("/api/runs").text
    assert strict_loads(client.get("/api/health").text)["status"] == "ok"


@pytest.mark.parametrize(
    "dataset",
    [
        {"kind": "moons", "n_samples": 120, "test_fraction": 0.3, "seed": 5},
        {"kind": "blobs", "n_classes": 4, "n_samples": 90, "noise": 0.4, "test_fraction": 0.2},
        {"kind": "custom", "points": _points(30, classes=3), "test_fraction": 0.25, "seed": 2},
    ],
)
def test_a_downloaded_csv_uploaded_as_custom_points_trains_the_same_run(
    client: TestClient, dataset: dict
) -> None:
    response = client.post("/api/datasets/csv", json=dataset)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["x1", "x2", "label", "split"]
    points = [[float(a), float(b), int(c)] for a, b, c, _ in rows[1:]]
    own = {"kind": "custom", "points": points, "test_fraction": dataset["test_fraction"]}
    own["seed"] = dataset.get("seed", 0)
    preview = client.post("/api/datasets/preview", json=dataset).json()
    assert sum(split == "test" for *_, split in rows[1:]) == len(preview["test"]["y"])
    training = {"iterations": 500, "report_every": 500}
    original = Trainer(RunConfig.model_validate({"dataset": dataset, "training": training}))
    again = Trainer(RunConfig.model_validate({"dataset": own, "training": training}))
    for trainer in (original, again):
        trainer.advance(500)
    assert again.report() == original.report()  # bit for bit
    np.testing.assert_array_equal(again.data.x_test, original.data.x_test)


def test_the_csv_route_refuses_what_the_preview_refuses(client: TestClient) -> None:
    error = _error(client.post("/api/datasets/csv", json={"kind": "custom", "points": _points(3)}))
    assert error["loc"] == ["body", "points"]
