"""HTTP routes: success and error cases, headers, limits (fake runs, no maths)."""

from __future__ import annotations

import asyncio
import csv
import io

from api_support import FakeRun, is_terminal, make_client, read_until, strict_loads
from fastapi.testclient import TestClient

from boundarylab.engine.config import RunConfig
from boundarylab.server import errors
from boundarylab.server.app import HTTP_STATUS


def _finished_run(client: TestClient, **training: object) -> str:
    run_id = client.post("/api/runs", json={"training": {"iterations": 300, **training}}).json()[
        "id"
    ]
    with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        read_until(ws, is_terminal)
    return run_id


def test_page_plotly_and_security_headers(fake_client: TestClient) -> None:
    page = fake_client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    plotly = fake_client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert "javascript" in plotly.headers["content-type"]
    # Errors carry the headers too; /docs is exempt from the CSP (it loads Swagger UI).
    assert "content-security-policy" in fake_client.get("/api/runs/nope").headers
    docs = fake_client.get("/docs")
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
    assert docs.headers["x-content-type-options"] == "nosniff"


def test_health_and_schema(fake_client: TestClient) -> None:
    health = fake_client.get("/api/health").json()
    assert health["status"] == "ok" and health["runs"] == {"running": 0, "queued": 0}
    schema = fake_client.get("/api/schema").json()
    compare = schema.pop("x-compare")
    assert schema.pop("x-sweep")["fields"]["training.reg_lambda"] == "λ"
    assert schema == RunConfig.model_json_schema()
    assert compare["hidden_sizes"]["maxItems"] == 12 and compare["hidden_sizes"]["minItems"] == 1
    openapi = fake_client.get("/openapi.json").json()
    assert "RunConfig" in openapi["components"]["schemas"]


def test_dataset_preview_and_its_errors(fake_client: TestClient) -> None:
    body = {"n_samples": 40, "test_fraction": 0.25}
    preview = fake_client.post("/api/datasets/preview", json=body)
    body = strict_loads(preview.text)
    assert preview.status_code == 200
    assert len(body["train"]["x"]) == 30 and len(body["test"]["y"]) == 10
    assert all(len(p) == 2 for p in body["train"]["x"])
    bad = fake_client.post("/api/datasets/preview", json={"noise": -1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "noise"]


def test_create_run_defaults_and_detail(fake_client: TestClient) -> None:
    created = fake_client.post("/api/runs")
    assert created.status_code == 201
    body = created.json()
    assert body["config"] == RunConfig().model_dump(mode="json")
    assert body["stream"] == f"/api/runs/{body['id']}/stream"
    run_id = _finished_run(fake_client)
    detail = fake_client.get(f"/api/runs/{run_id}").json()
    assert detail["status"] == "completed" and detail["iteration"] == 300
    assert [h["iteration"] for h in detail["history"]] == [0, 100, 200, 300]
    assert detail["metrics"]["iteration"] == 300
    listed = {r["id"] for r in fake_client.get("/api/runs").json()}
    assert {body["id"], run_id} <= listed


def test_invalid_bodies_are_422_naming_the_field(fake_client: TestClient) -> None:
    cases = [
        ({"training": {"learning_rate": "fast"}}, ["body", "training", "learning_rate"]),
        ({"training": {"iterations": 10**9}}, ["body", "training", "iterations"]),
        ({"model": {"hidden_sizes": [3, 0]}}, ["body", "model", "hidden_sizes", 1]),
        ({"dataset": {"colour": "red"}}, ["body", "dataset", "colour"]),
        ({"view": {"resolution": 5}}, ["body", "view", "resolution"]),
    ]
    for body, loc in cases:
        response = fake_client.post("/api/runs", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"] == loc
    batch = fake_client.post(
        "/api/runs", json={"dataset": {"n_samples": 10}, "training": {"batch_size": 20}}
    )
    assert batch.status_code == 422 and "batch_size" in batch.json()["detail"][0]["msg"]


def test_nan_literals_and_broken_json_are_422_not_500(fake_client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    for raw, field in [
        (b'{"training": {"learning_rate": NaN}}', "learning_rate"),
        (b'{"dataset": {"noise": Infinity}}', "noise"),
        (b'{"view": {"max_fps": -Infinity}}', "max_fps"),
    ]:
        response = fake_client.post("/api/runs", content=raw, headers=headers)
        assert response.status_code == 422
        detail = strict_loads(response.text)["detail"][0]
        assert detail["loc"][-1] == field
    broken = fake_client.post("/api/runs", content=b'{"training": ', headers=headers)
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"


def test_server_limits_lower_than_the_schema() -> None:
    with make_client(FakeRun, max_samples=100, max_iterations=1000) as client:
        too_many = client.post("/api/runs", json={"dataset": {"n_samples": 101}})
        assert too_many.status_code == 422
        assert too_many.json()["detail"][0]["loc"] == ["body", "dataset", "n_samples"]
        too_long = client.post(
            "/api/runs", json={"dataset": {"n_samples": 50}, "training": {"iterations": 1001}}
        )
        assert too_long.json()["detail"][0]["loc"] == ["body", "training", "iterations"]
        preview = client.post("/api/datasets/preview", json={"n_samples": 500})
        assert preview.status_code == 422 and preview.json()["detail"][0]["loc"] == [
            "body",
            "n_samples",
        ]


def test_body_over_the_limit_is_413(fake_client: TestClient) -> None:
    big = b'{"dataset": {"kind": "moons"}, "pad": "' + b"x" * 70_000 + b'"}'
    headers = {"content-type": "application/json"}
    declared = fake_client.post("/api/runs", content=big, headers=headers)
    assert declared.status_code == 413 and "65536" in declared.json()["detail"]

    def chunks():  # no Content-Length: the server must count what arrives
        for _ in range(10):
            yield b" " * 10_000

    streamed = fake_client.post(
        "/api/runs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_unknown_run_is_404_everywhere(fake_client: TestClient) -> None:
    for method, path in [
        ("get", "/api/runs/0123456789abcdef"),
        ("get", "/api/runs/../../etc/passwd/model"),
        ("post", "/api/runs/nope/pause"),
        ("post", "/api/runs/nope/step"),
        ("get", "/api/runs/nope/model"),
        ("get", "/api/runs/nope/history.csv"),
    ]:
        response = getattr(fake_client, method)(path)
        assert response.status_code == 404, path


def test_exports_model_and_history_csv(fake_client: TestClient) -> None:
    run_id = _finished_run(fake_client)
    model = fake_client.get(f"/api/runs/{run_id}/model")
    assert model.status_code == 200
    assert strict_loads(model.text)["layers"][0]["W"] == [[None]]  # NaN mapped to null
    history = fake_client.get(f"/api/runs/{run_id}/history.csv")
    assert history.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(history.text)))
    assert list(rows[0]) == ["iteration", "loss", "train_accuracy", "test_loss", "test_accuracy"]
    assert [int(r["iteration"]) for r in rows] == [0, 100, 200, 300]
    assert float(rows[-1]["loss"]) == 1 / 301 and rows[-1]["test_loss"] == ""


def test_too_many_progress_reports_is_422_on_report_every(fake_client: TestClient) -> None:
    body = {"training": {"iterations": 200_000, "report_every": 1}}
    response = fake_client.post("/api/runs", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "training", "report_every"] and "10" in detail["msg"]
    body["training"]["report_every"] = 10
    assert fake_client.post("/api/runs", json=body).status_code == 201


def test_head_answers_like_get_without_a_body(fake_client: TestClient) -> None:
    run_id = _finished_run(fake_client)
    for path in ["/api/health", "/api/runs", f"/api/runs/{run_id}", f"/api/runs/{run_id}/model",
                 f"/api/runs/{run_id}/history.csv", "/api/schema", "/"]:  # fmt: skip
        get, head = fake_client.get(path), fake_client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == str(len(get.content)), path
        assert head.headers["content-security-policy"] == get.headers["content-security-policy"]
    assert fake_client.head("/api/runs/nope").status_code == 404


def test_debug_routes_exist_only_when_the_setting_turns_them_on(fake_client: TestClient) -> None:
    assert fake_client.get("/api/debug/loop-lag").status_code == 404
    assert fake_client.post("/api/debug/loop-lag/reset").status_code == 405  # static files
    assert "/api/debug/loop-lag" not in fake_client.get("/openapi.json").json()["paths"]
    with make_client(FakeRun, debug_routes=True) as client:
        assert client.post("/api/debug/loop-lag/reset").json()["samples"] == 0
        for _ in range(200):  # the ticker samples every 10 ms
            if client.get("/api/debug/loop-lag").json()["samples"]:
                break
            client.portal.call(asyncio.sleep, 0.02)  # type: ignore[union-attr]
        assert client.get("/api/debug/loop-lag").json()["samples"] > 0


def test_openapi_describes_every_json_answer(fake_client: TestClient) -> None:
    openapi = fake_client.get("/openapi.json").json()

    def answer(path: str, method: str = "get", status: str = "200") -> str:
        content = openapi["paths"][path][method]["responses"][status]["content"]
        schema = content["application/json"]["schema"]
        return schema.get("$ref", "") or schema.get("items", {}).get("$ref", "")

    assert answer("/api/health").endswith("/Health")
    assert answer("/api/runs").endswith("/RunSummary")
    assert answer("/api/runs", "post", "201").endswith("/RunCreated")
    assert answer("/api/runs/{run_id}").endswith("/RunDetail")
    assert answer("/api/runs/{run_id}/model").endswith("/ModelExport")
    assert answer("/api/datasets/preview", "post").endswith("/DatasetPoints")
    for action in ("pause", "resume", "step", "cancel"):
        assert answer(f"/api/runs/{{run_id}}/{action}", "post").endswith("/ControlResult")
    assert answer("/api/runs/{run_id}", status="404").endswith("/Detail")
    csv_answer = openapi["paths"]["/api/runs/{run_id}/history.csv"]["get"]["responses"]["200"]
    assert "text/csv" in csv_answer["content"]


def test_every_refusal_of_the_service_has_one_http_status() -> None:
    """The run service's refusals are kinds; HTTP maps each to a status, and a WebSocket
    close code (1013, too many viewers) never passes for an HTTP status."""

    def kinds(cls: type) -> list[type]:
        return [cls, *(k for sub in cls.__subclasses__() for k in kinds(sub))]

    statuses = {
        kind: next(HTTP_STATUS[c] for c in kind.__mro__ if c in HTTP_STATUS)
        for kind in kinds(errors.Refusal)
        if kind is not errors.Refusal
    }
    assert statuses == {errors.Conflict: 409, errors.Busy: 429, errors.TooManyViewers: 429,
                        errors.ShuttingDown: 503}  # fmt: skip
