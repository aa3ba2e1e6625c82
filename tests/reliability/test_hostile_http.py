"""Hand-picked hostile HTTP requests the fuzzer may miss: each gets a 4xx naming the field.

Bodies are sent as raw bytes, because a JSON encoder would refuse NaN or fold repeated keys
before the server ever saw them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from reliability_support import InstantRun, make_client, strict_loads

JSON = "application/json"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with make_client(InstantRun, max_runs_per_client=10_000, retention_count=20) as c:
        yield c


def post(client: TestClient, body: bytes, content_type: str | None = JSON, path: str = "/api/runs"):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    return response.status_code, strict_loads(response.text)


def locs(body: dict) -> list[tuple]:
    return [tuple(error["loc"]) for error in body["detail"]]


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (b'{"training": {"learning_rate": NaN}}', ("body", "training", "learning_rate")),
        (b'{"training": {"reg_lambda": Infinity}}', ("body", "training", "reg_lambda")),
        (b'{"dataset": {"noise": -Infinity}}', ("body", "dataset", "noise")),
        (b'{"view": {"max_fps": NaN}}', ("body", "view", "max_fps")),
        (b'{"training": {"steps_per_second": Infinity}}', ("body", "training", "steps_per_second")),
        (b'{"dataset": {"n_samples": NaN}}', ("body", "dataset", "n_samples")),
        (b'{"training": {"learning_rate": 1e400}}', ("body", "training", "learning_rate")),
        (b'{"training": {"learning_rate": 1e308}}', ("body", "training", "learning_rate")),
        (b'{"dataset": {"n_samples": 1e308}}', ("body", "dataset", "n_samples")),
        (b'{"training": {"iterations": -1e308}}', ("body", "training", "iterations")),
        (b'{"training": {"learning_rate": -0.0}}', ("body", "training", "learning_rate")),
        (b'{"dataset": {"n_samples": -0.0}}', ("body", "dataset", "n_samples")),
        (b'{"training": {"learning_rate": "fast"}}', ("body", "training", "learning_rate")),
        (b'{"training": {"learning_rate": "NaN"}}', ("body", "training", "learning_rate")),
        (b'{"training": {"iterations": "1e3x"}}', ("body", "training", "iterations")),
        (b'{"dataset": {"n_samples": [300]}}', ("body", "dataset", "n_samples")),
        (b'{"model": {"hidden_sizes": "3"}}', ("body", "model", "hidden_sizes")),
        (b'{"model": {"hidden_sizes": [3.5]}}', ("body", "model", "hidden_sizes", 0)),
        (b'{"training": {"training": {"iterations": 3}}}', ("body", "training", "training")),
        (b'{"dataset": {"kind": {"kind": "moons"}}}', ("body", "dataset", "kind")),
        (b'{"extra": 1}', ("body", "extra")),
    ],
)
def test_bad_numbers_and_shapes_are_422_naming_the_field(
    client: TestClient, raw: bytes, loc: tuple
) -> None:
    status, body = post(client, raw)
    assert status == 422
    assert loc in locs(body)
    assert all(error["msg"] for error in body["detail"])


def test_edge_values_that_are_valid_are_accepted(client: TestClient) -> None:
    # -0.0 is ≥ 0 and 300.0 is an integer: both are valid and must train, not fail later.
    raw = b'{"dataset": {"noise": -0.0, "n_samples": 300.0}, "training": {"iterations": 2}}'
    status, body = post(client, raw)
    assert status == 201, body
    assert body["config"]["dataset"]["n_samples"] == 300


def test_repeated_keys_take_the_last_value(client: TestClient) -> None:
    status, body = post(client, b'{"training": {"iterations": 5, "iterations": 7}}')
    assert status == 201
    assert body["config"]["training"]["iterations"] == 7


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 30_000 + b"]" * 30_000,  # deeper than Python's recursion limit
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"training": {"seed": ' + b"9" * 5000 + b"}}",  # int() refuses > 4300 digits
        b'{"a": "\xff\xfe"}',  # not UTF-8
        b'{"training": ',
        b"\x00",
    ],
)
def test_unparseable_bodies_are_4xx_about_the_body(client: TestClient, raw: bytes) -> None:
    status, body = post(client, raw)
    assert status in (400, 422)
    assert "body" in str(body["detail"])


def test_empty_body_means_defaults_for_a_run_and_is_named_for_a_preview(
    client: TestClient,
) -> None:
    status, body = post(client, b"")
    assert status == 201 and body["config"]["training"]["iterations"] == 20000
    status, body = post(client, b"", path="/api/datasets/preview")
    assert status == 422 and locs(body) == [("body",)]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_wrong_content_type_is_422_on_the_body(
    client: TestClient, content_type: str | None
) -> None:
    status, body = post(client, b'{"training": {"iterations": 3}}', content_type)
    assert status == 422 and locs(body) == [("body",)]


def test_a_10_mb_body_is_413_with_or_without_content_length(client: TestClient) -> None:
    status, body = post(client, b" " * 10_000_000)
    assert status == 413 and "limit" in body["detail"]

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to trust
        for _ in range(160):
            yield b" " * 65536

    response = client.post("/api/runs", content=chunks(), headers={"content-type": JSON})
    assert response.status_code == 413 and "limit" in response.json()["detail"]
    response = client.post("/api/runs", content=b"{}", headers={"content-length": "12abc"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "run_id",
    [str(uuid.uuid4()), "0" * 16, "%00", "x" * 5000, "%F0%9F%92%A9", "%2e%2e", "-1"],
)
def test_unknown_run_ids_are_404_on_every_route(client: TestClient, run_id: str) -> None:
    for method, suffix in [
        ("GET", ""),
        ("GET", "/model"),
        ("GET", "/history.csv"),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("POST", "/step"),
        ("POST", "/cancel"),
    ]:
        response = client.request(method, f"/api/runs/{run_id}{suffix}")
        assert response.status_code == 404, (method, suffix, response.text)
        assert strict_loads(response.text)["detail"]
    with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        message = strict_loads(ws.receive_text())
        assert message["type"] == "error" and "no run" in message["message"]


def test_the_server_still_works_after_all_that(client: TestClient) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    assert post(client, b'{"training": {"iterations": 4}}')[0] == 201
