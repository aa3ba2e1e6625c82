"""Knobs that turn while a run trains, over HTTP (PATCH /api/runs/{id}) and the socket
({"action": "set", ...}): applied at the next step, told to every viewer, kept in the history,
the CSV and the model export; and every bad change a clear 4xx."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from api_support import FakeRun, is_terminal, make_client, read_until, strict_loads
from fastapi.testclient import TestClient

from boundarylab.engine.config import RunConfig
from boundarylab.engine.knobs import Retune
from boundarylab.engine.training import Trainer
from boundarylab.server.messages import progress_message
from modes import ClientFactory

WAIT_S = 120.0  # bound of every wait: the machine is shared and workers run at niceness 19


def _wait_status(client: TestClient, run_id: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        detail = client.get(f"/api/runs/{run_id}").json()
        if detail["status"] in wanted:
            return detail  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {wanted}")


def _wait_iteration(client: TestClient, run_id: str, at_least: int) -> int:
    """The run's iteration once it is `at_least` and the run is paused again."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        detail = client.get(f"/api/runs/{run_id}").json()
        if detail["iteration"] >= at_least and detail["status"] == "paused":
            return int(detail["iteration"])
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never stepped to {at_least}")


def _paused_run(client: TestClient, body: dict) -> str:
    """A run paused before its worker trains a step (a pause sent while it is queued is
    applied as it starts), so whatever the machine's speed it is live when a change lands."""
    run_id = client.post("/api/runs", json=body).json()["id"]
    client.post(f"/api/runs/{run_id}/pause")
    _wait_status(client, run_id, {"paused"})
    return run_id


def _expected(body: dict, iterations: list[int], at: int, change: Retune) -> tuple[list, Trainer]:
    """What a bare Trainer reports at `iterations` when the same change applies after step
    `at` (a pause lands between reports, so the run's reports are taken as they came)."""
    trainer = Trainer(RunConfig.model_validate(body))
    history = []
    for k in iterations:
        if trainer.iteration <= at < k:
            trainer.advance(at - trainer.iteration)
            trainer.retune(change)
        trainer.advance(k - trainer.iteration)
        history.append(progress_message(trainer.report()))
    return [{k: v for k, v in e.items() if k != "type"} for e in history], trainer


def test_patch_mid_run_matches_a_fresh_engine_run_and_is_kept_everywhere() -> None:
    body = {"training": {"iterations": 1500, "report_every": 100, "optimizer": "adam",
                         "learning_rate": 0.003, "steps_per_second": 5000}}  # fmt: skip
    with make_client(mode="process", worker_processes=1) as client:
        run_id = _paused_run(client, body)
        base = f"/api/runs/{run_id}"
        with client.websocket_connect(f"{base}/stream") as one, \
                client.websocket_connect(f"{base}/stream") as two:  # fmt: skip
            client.post(f"{base}/step")
            # The step's answer says where the run stood when the step landed or its short
            # wait ran out; a worker at niceness 19 on a busy machine can be slower than
            # that, so wait for the step itself.
            stepped = _wait_iteration(client, run_id, 100)
            answer = client.patch(base, json={"training": {"learning_rate": 0.02}})
            assert answer.status_code == 200, answer.text
            result = answer.json()
            assert result["applied"] is True and result["status"] == "paused"
            change = {"iteration": stepped, "changed": {"learning_rate": 0.02},
                      "current": {"learning_rate": 0.02, "reg_lambda": 0.01,
                                  "steps_per_second": 5000.0}}  # fmt: skip
            assert result["changes"] == [change]
            for ws in (one, two):  # every viewer is told
                seen = read_until(ws, lambda m: m["type"] == "knobs")
                assert {k: v for k, v in seen[-1].items() if k != "type"} == change
            client.post(f"{base}/resume")
            read_until(one, is_terminal)
        detail = _wait_status(client, run_id, {"completed"})
        iterations = [entry["iteration"] for entry in detail["history"]]
        assert stepped in iterations and iterations[-1] == 1500
        history, fresh = _expected(body, iterations, stepped, Retune(learning_rate=0.02))
        assert detail["history"] == history  # every float, to the last bit
        assert detail["changes"] == [change]
        model = strict_loads(client.get(f"{base}/model").text)
        assert model["changes"] == [change]
        assert model["config"]["training"]["learning_rate"] == 0.003  # as it started
        assert model["layers"][0]["W"] == fresh.net.params[0][0].tolist()
        rows = list(csv.DictReader(io.StringIO(client.get(f"{base}/history.csv").text)))
        assert list(rows[0])[-1] == "change"
        marked = [r for r in rows if r["change"]]
        assert marked == [{"iteration": str(stepped), "loss": "", "train_accuracy": "",
                           "test_loss": "", "test_accuracy": "",
                           "change": "learning_rate=0.02"}]  # fmt: skip
        # Just below the progress row of the step it applied after.
        assert rows[rows.index(marked[0]) - 1]["iteration"] == str(stepped)
        snapshot = _snapshot(client, run_id)
        assert snapshot["changes"] == [change]


def _snapshot(client: TestClient, run_id: str) -> dict[str, Any]:
    with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        return strict_loads(ws.receive_text())  # type: ignore[no-any-return]


def test_the_socket_action_changes_lambda_and_pace_and_refuses_by_field(
    mode_client: ClientFactory,
) -> None:
    body = {"training": {"iterations": 200_000, "report_every": 1000, "steps_per_second": 2000}}
    with mode_client(max_run_seconds=300) as client:
        run_id = _paused_run(client, body)
        with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
            ws.send_json({"action": "set", "training": {"reg_lambda": 0.2,
                                                       "steps_per_second": 1000}})  # fmt: skip
            seen = read_until(ws, lambda m: m["type"] == "knobs")[-1]
            assert seen["changed"] == {"reg_lambda": 0.2, "steps_per_second": 1000.0}
            assert seen["current"]["learning_rate"] == 0.01
            ws.send_json({"action": "set", "training": {"learning_rate": 0, "seed": 3}})
            error = read_until(ws, lambda m: m["type"] == "error")[-1]
            assert error["loc"] == ["training", "seed"] and "needs a new run" in error["message"]
            ws.send_json({"action": "set", "training": {"learning_rate": 0}})
            error = read_until(ws, lambda m: m["type"] == "error")[-1]
            assert error["loc"] == ["training", "learning_rate"]
            # 200 000 steps at 100 steps/s: 2000 s, past this server's 300 s.
            ws.send_json({"action": "set", "training": {"steps_per_second": 100}})
            error = read_until(ws, lambda m: m["type"] == "error")[-1]
            assert error["loc"] == ["training", "steps_per_second"] and "300 s" in error["message"]
            ws.send_json({"action": "cancel"})
            read_until(ws, is_terminal)
        assert client.get(f"/api/runs/{run_id}").json()["changes"][0]["changed"] == seen["changed"]


def test_bad_changes_are_422s_that_name_the_field(mode_client: ClientFactory) -> None:
    body = {"training": {"iterations": 200_000, "report_every": 1000, "steps_per_second": 2000}}
    with mode_client(max_run_seconds=300) as client:
        run_id = _paused_run(client, body)
        base = f"/api/runs/{run_id}"
        cases = [
            ({"training": {"learning_rate": 0.1, "iterations": 10}}, ["body", "training",
                                                                      "iterations"]),
            ({"model": {"hidden_sizes": [4]}, "training": {"learning_rate": 0.1}},
             ["body", "model"]),
            ({"training": {"learning_rate": -1}}, ["body", "training", "learning_rate"]),
            ({"training": {"reg_lambda": 11}}, ["body", "training", "reg_lambda"]),
            ({"training": {"steps_per_second": None}}, ["body", "training", "steps_per_second"]),
            ({"training": {}}, ["body", "training"]),
            ({"training": {"steps_per_second": 100}}, ["body", "training", "steps_per_second"]),
        ]  # fmt: skip
        for patch, loc in cases:
            answer = client.patch(base, json=patch)
            assert answer.status_code == 422, (patch, answer.text)
            assert answer.json()["detail"][0]["loc"] == loc, patch
        nan = client.patch(base, content=b'{"training": {"learning_rate": NaN}}',
                           headers={"content-type": "application/json"})  # fmt: skip
        assert nan.status_code == 422
        assert nan.json()["detail"][0]["loc"] == ["body", "training", "learning_rate"]
        assert client.get(base).json()["changes"] == []  # nothing refused was applied
        client.post(f"{base}/cancel")
        _wait_status(client, run_id, {"cancelled"})
        finished = client.patch(base, json={"training": {"learning_rate": 0.1}})
        assert finished.status_code == 409 and "cancelled" in finished.json()["detail"]
        assert (
            client.patch("/api/runs/nope", json={"training": {"learning_rate": 1}}).status_code
            == 404
        )


def test_a_queued_run_is_a_409_and_the_command_rate_applies(mode_client: ClientFactory) -> None:
    with mode_client(FakeRun, max_running=1, max_runs_per_client=5) as client:
        slow = {"training": {"iterations": 1000, "report_every": 100, "steps_per_second": 1}}
        first = client.post("/api/runs", json=slow).json()["id"]
        queued = client.post("/api/runs", json={}).json()["id"]
        assert client.get(f"/api/runs/{queued}").json()["status"] == "queued"
        answer = client.patch(f"/api/runs/{queued}", json={"training": {"learning_rate": 0.1}})
        assert answer.status_code == 409 and "not started" in answer.json()["detail"]
        _wait_status(client, first, {"running"})
        with client.websocket_connect(f"/api/runs/{first}/stream") as ws:
            for _ in range(25):
                ws.send_json({"action": "set", "training": {"learning_rate": 0.5}})
            error = read_until(ws, lambda m: m["type"] == "error")[-1]
        assert "too many control requests" in error["message"]


def test_a_pace_raised_past_what_its_worker_has_left_is_a_422_that_says_what_fits() -> None:
    """Two paced runs share one worker. Raising one's pace to what would take ten CPUs is
    refused on the field, with the pace that fits; a raise that fits applies; a run alone on
    its worker may take any pace (as admission gives an idle worker any run)."""
    body = {"training": {"iterations": 200_000, "report_every": 1000, "steps_per_second": 100}}
    with make_client(worker_processes=1, max_running=4) as client:
        first, second = _paused_run(client, body), _paused_run(client, body)
        base = f"/api/runs/{first}"
        answer = client.patch(base, json={"training": {"steps_per_second": 1_000_000}})
        assert answer.status_code == 422, answer.text
        error = answer.json()["detail"][0]
        assert error["loc"] == ["body", "training", "steps_per_second"]
        assert "of a CPU" in error["msg"] and "use at most" in error["msg"], error
        fits = float(error["msg"].split("use at most ")[1].split(" ")[0])
        assert 1000 < fits < 1_000_000, error["msg"]
        assert client.get(base).json()["changes"] == []
        raised = client.patch(base, json={"training": {"steps_per_second": fits / 2}})
        assert raised.status_code == 200, raised.text
        client.post(f"/api/runs/{second}/cancel")
        _wait_status(client, second, {"cancelled"})
        alone = client.patch(base, json={"training": {"steps_per_second": 1_000_000}})
        assert alone.status_code == 200, alone.text
        client.post(f"{base}/cancel")
