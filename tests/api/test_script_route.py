"""GET /api/runs/{id}/script: the run's config as a standalone script (thin route)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from boundarylab.engine.config import RunConfig
from boundarylab.engine.script_export import NotExpressible, run_script
from boundarylab.server import routes_runs


def test_script_of_a_run_is_its_configs_script(fake_client: TestClient) -> None:
    body = {"model": {"hidden_sizes": [5, 4], "activation": "relu"},
            "training": {"iterations": 300, "optimizer": "adam"}}  # fmt: skip
    run_id = fake_client.post("/api/runs", json=body).json()["id"]
    answer = fake_client.get(f"/api/runs/{run_id}/script")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/x-python")
    assert f'filename="boundarylab-{run_id}.py"' in answer.headers["content-disposition"]
    assert answer.text == run_script(RunConfig.model_validate(body))
    assert "hidden_sizes = [5, 4]" in answer.text and "np.maximum(z1, 0.0)" in answer.text


def test_script_of_an_unknown_run_is_404(fake_client: TestClient) -> None:
    assert fake_client.get("/api/runs/nope/script").status_code == 404


def test_a_config_the_script_cannot_express_is_409_saying_what(
    fake_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(config: RunConfig) -> str:
        raise NotExpressible("dataset.kind 'custom' has no script export yet")

    monkeypatch.setattr(routes_runs, "run_script", refuse)
    run_id = fake_client.post("/api/runs", json={"training": {"iterations": 300}}).json()["id"]
    answer = fake_client.get(f"/api/runs/{run_id}/script")
    assert answer.status_code == 409 and "dataset.kind 'custom'" in answer.json()["detail"]
