"""HTTP routes: success and error cases, headers, limits (fake runs, no maths)."""

from __future__ import annotations

import asyncio
import csv
import io

from api_support import FakeRun, is_terminal, make_client, read_until, strict_loads
from fastapi.testclient import TestClient

from boundarylab.engine.config import RunConfig
from boundarylab.engine.presets import FEATURE_CONTRAST, PRESETS
from boundarylab.server import errors
from boundarylab.server.app import HTTP_STATUS
from boundarylab.server.settings import Settings
from modes import ClientFactory


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
    # Errors carry the headers too, and so do the docs (Swagger UI served by the app).
    assert "content-security-policy" in fake_client.get("/api/runs/nope").headers
    docs = fake_client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-security-policy"].startswith(
        "default-src 'self'"
    )
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in docs.text and "//cdn" not in docs.text
    for asset in ["/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
                  "/docs/start.js"]:  # fmt: skip
        assert fake_client.get(asset).status_code == 200, asset
    assert fake_client.get("/redoc").status_code == 404


def test_health_and_schema(fake_client: TestClient) -> None:
    health = fake_client.get("/api/health").json()
    assert health["status"] == "ok" and health["runs"] == {"running": 0, "queued": 0}
    schema = fake_client.get("/api/schema").json()
    compare = schema.pop("x-compare")
    presets, contrast = schema.pop("x-presets"), schema.pop("x-feature-contrast")
    assert schema.pop("x-sweep")["fields"]["training.reg_lambda"] == "λ"
    assert schema == RunConfig.model_json_schema()
    assert contrast == list(FEATURE_CONTRAST) and set(contrast) <= set(presets)
    for name, preset in presets.items():  # each one a valid run, as the page will send it
        assert RunConfig.model_validate(preset["sections"]) == PRESETS[name].config()
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


def test_create_run_defaults_and_detail(any_client: TestClient) -> None:
    created = any_client.post("/api/runs")
    assert created.status_code == 201
    body = created.json()
    assert body["config"] == RunConfig().model_dump(mode="json")
    assert body["stream"] == f"/api/runs/{body['id']}/stream"
    run_id = _finished_run(any_client)
    detail = any_client.get(f"/api/runs/{run_id}").json()
    assert detail["status"] == "completed" and detail["iteration"] == 300
    assert [h["iteration"] for h in detail["history"]] == [0, 100, 200, 300]
    assert detail["metrics"]["iteration"] == 300
    listed = {r["id"] for r in any_client.get("/api/runs").json()}
    assert {body["id"], run_id} <= listed


def test_invalid_bodies_are_422_naming_the_field(any_client: TestClient) -> None:
    cases = [
        ({"training": {"learning_rate": "fast"}}, ["body", "training", "learning_rate"]),
        ({"training": {"iterations": 10**9}}, ["body", "training", "iterations"]),
        ({"model": {"hidden_sizes": [3, 0]}}, ["body", "model", "hidden_sizes", 1]),
        ({"dataset": {"colour": "red"}}, ["body", "dataset", "colour"]),
        ({"view": {"resolution": 5}}, ["body", "view", "resolution"]),
    ]
    for body, loc in cases:
        response = any_client.post("/api/runs", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["loc"] == loc
    batch = any_client.post(
        "/api/runs", json={"dataset": {"n_samples": 10}, "training": {"batch_size": 20}}
    )
    assert batch.status_code == 422 and "batch_size" in batch.json()["detail"][0]["msg"]


def test_nan_literals_and_broken_json_are_422_not_500(any_client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    for raw, field in [
        (b'{"training": {"learning_rate": NaN}}', "learning_rate"),
        (b'{"dataset": {"noise": Infinity}}', "noise"),
        (b'{"view": {"max_fps": -Infinity}}', "max_fps"),
    ]:
        response = any_client.post("/api/runs", content=raw, headers=headers)
        assert response.status_code == 422
        detail = strict_loads(response.text)["detail"][0]
        assert detail["loc"][-1] == field
    broken = any_client.post("/api/runs", content=b'{"training": ', headers=headers)
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"


def _detail(response) -> list[tuple[tuple, str]]:
    """Every error of a 422, as (loc, type): the whole list, not only its first entry."""
    assert response.status_code == 422, response.text
    return [(tuple(e["loc"]), e["type"]) for e in response.json()["detail"]]


def test_server_limits_lower_than_the_schema(mode_client: ClientFactory) -> None:
    with mode_client(FakeRun, max_samples=400, max_iterations=1000) as client:
        too_many = client.post(
            "/api/runs", json={"dataset": {"n_samples": 401}, "training": {"iterations": 10}}
        )
        assert _detail(too_many) == [(("body", "dataset", "n_samples"), "less_than_equal")]
        too_long = client.post(
            "/api/runs", json={"dataset": {"n_samples": 50}, "training": {"iterations": 1001}}
        )
        assert _detail(too_long) == [(("body", "training", "iterations"), "less_than_equal")]
        # The default 20000 steps are over this server's limit too: said, not trained.
        default = client.post("/api/runs", json={})
        assert _detail(default) == [(("body", "training", "iterations"), "less_than_equal")]
        big_batch = client.post(
            "/api/runs", json={"training": {"iterations": 10, "batch_size": 401}}
        )
        assert ("body", "training", "batch_size") in dict(_detail(big_batch))
        fine = client.post("/api/runs", json={"training": {"iterations": 1000}})
        assert fine.status_code == 201, fine.text
        # The preview checks the dataset alone: the default run's 20000 steps do not matter.
        preview = client.post("/api/datasets/preview", json={"n_samples": 400})
        assert preview.status_code == 200, preview.text
        assert len(preview.json()["train"]["x"]) == 400
        assert client.post("/api/datasets/preview", json={}).status_code == 200
        too_big = client.post("/api/datasets/preview", json={"n_samples": 500})
        assert _detail(too_big) == [(("body", "n_samples"), "less_than_equal")]


def test_schema_states_this_servers_limits() -> None:
    with make_client(FakeRun, max_samples=400, max_iterations=1000) as client:
        schema = client.get("/api/schema").json()
    defs = schema["$defs"]
    assert defs["DatasetConfig"]["properties"]["n_samples"]["maximum"] == 400
    assert defs["TrainingConfig"]["properties"]["iterations"]["maximum"] == 1000
    batch = defs["TrainingConfig"]["properties"]["batch_size"]["anyOf"]
    assert [b["maximum"] for b in batch if "maximum" in b] == [400]
    assert schema["x-compare"]["hidden_sizes"]["maxItems"] == 12


def test_body_over_the_limit_is_413(fake_client: TestClient) -> None:
    # A route that takes no own data points keeps the ordinary cap.
    route = "/api/runs/0123456789abcdef/pause"
    big = b'{"dataset": {"kind": "moons"}, "pad": "' + b"x" * 70_000 + b'"}'
    headers = {"content-type": "application/json"}
    declared = fake_client.post(route, content=big, headers=headers)
    assert declared.status_code == 413 and "65536" in declared.json()["detail"]

    # /api/runs takes own data points, so its cap is larger, but a cap still.
    cap = Settings().max_data_body_bytes

    def chunks():  # no Content-Length: the server must count what arrives
        for _ in range(cap // 10_000 + 1):
            yield b" " * 10_000

    streamed = fake_client.post("/api/runs", content=chunks(), headers=headers)
    assert streamed.status_code == 413 and str(cap) in streamed.json()["detail"]
    huge = b" " * (cap + 1)
    assert fake_client.post("/api/runs", content=huge, headers=headers).status_code == 413


def test_unknown_run_is_404_everywhere(any_client: TestClient) -> None:
    for method, path in [
        ("get", "/api/runs/0123456789abcdef"),
        ("get", "/api/runs/../../etc/passwd/model"),
        ("post", "/api/runs/nope/pause"),
        ("post", "/api/runs/nope/step"),
        ("get", "/api/runs/nope/model"),
        ("get", "/api/runs/nope/history.csv"),
    ]:
        response = getattr(any_client, method)(path)
        assert response.status_code == 404, path


def test_exports_model_and_history_csv(any_client: TestClient) -> None:
    run_id = _finished_run(any_client)
    model = any_client.get(f"/api/runs/{run_id}/model")
    assert model.status_code == 200
    assert strict_loads(model.text)["layers"][0]["W"] == [[None]]  # NaN mapped to null
    history = any_client.get(f"/api/runs/{run_id}/history.csv")
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


def test_head_answers_like_get_without_a_body(any_client: TestClient) -> None:
    run_id = _finished_run(any_client)
    for path in ["/api/health", "/api/runs", f"/api/runs/{run_id}", f"/api/runs/{run_id}/model",
                 f"/api/runs/{run_id}/history.csv", "/api/schema", "/"]:  # fmt: skip
        get, head = any_client.get(path), any_client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == str(len(get.content)), path
        assert head.headers["content-security-policy"] == get.headers["content-security-policy"]
    assert any_client.head("/api/runs/nope").status_code == 404


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
                        errors.ShuttingDown: 503, errors.Invalid: 422,
                        errors.Unavailable: 503}  # fmt: skip
