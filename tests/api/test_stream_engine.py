"""The stream with the real engine (runloop.RunLoop in worker processes and threads)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import psutil
from api_support import (
    is_terminal,
    make_client,
    read_until,
    strict_loads,
    watch,
    worker_threads,
)
from fastapi.testclient import TestClient

from app_client import Watched
from boundarylab.engine.config import RunConfig
from boundarylab.engine.training import Trainer
from boundarylab.server.messages import progress_message
from modes import ClientFactory

ARTICLE_SHORT = {"training": {"iterations": 1500, "report_every": 100}}


def _expected_history(body: dict) -> list[dict]:
    """What a bare Trainer reports at each report_every step (no server involved)."""
    config = RunConfig.model_validate(body)
    trainer = Trainer(config)
    history = [progress_message(trainer.report())]
    while not trainer.done:
        trainer.advance(config.training.report_every)
        history.append(progress_message(trainer.report()))
    return [{k: v for k, v in entry.items() if k != "type"} for entry in history]


def _cli_losses(iterations: int, report_every: int) -> list[float]:
    """Losses from `boundarylab train --format jsonl` for the article's config."""
    argv = ["train", "--iterations", str(iterations), "--report-every", str(report_every)]
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from boundarylab.cli import main; raise SystemExit(main())",
            *argv,
            "--format",
            "jsonl",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [line["loss"] for line in lines if line["type"] == "progress"]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stream_to_end(client: TestClient, body: dict) -> tuple[str, Watched]:
    run_id = client.post("/api/runs", json=body).json()["id"]
    with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
        return run_id, watch(ws.receive_text)


def test_process_workers_stream_the_engine_exactly_and_shut_down_clean() -> None:
    with make_client(mode="process", max_running=1) as client:
        run_id, seen = _stream_to_end(client, ARTICLE_SHORT)
        pids = client.app.state.service.scheduler.worker_pids()  # type: ignore[attr-defined]
        assert pids and all(psutil.pid_exists(pid) for pid in pids)
        model = strict_loads(client.get(f"/api/runs/{run_id}/model").text)
    assert seen.progress == _expected_history(ARTICLE_SHORT)  # same floats, bit for bit
    assert [h["loss"] for h in seen.progress] == _cli_losses(1500, 100)
    assert seen.frame is not None
    assert seen.frame["iteration"] == 1500 and seen.frame["encoding"] == "p1-uint8-base64"
    assert seen.end["status"] == "completed"
    assert model["iteration"] == 1500 and len(model["layers"]) == 2
    assert model["config"] == RunConfig.model_validate(ARTICLE_SHORT).model_dump(mode="json")
    # Lifespan exit stopped the pool: no worker process or thread is left.
    assert not any(_running(pid) for pid in pids)
    assert not worker_threads()


def test_a_run_streams_exactly_the_engines_numbers(mode_client: ClientFactory) -> None:
    """Embedded or through Redis: the same floats as a bare Trainer, and the final model."""
    with mode_client() as client:
        run_id, seen = _stream_to_end(client, ARTICLE_SHORT)
        detail = client.get(f"/api/runs/{run_id}").json()
        model = strict_loads(client.get(f"/api/runs/{run_id}/model").text)
    assert seen.progress == _expected_history(ARTICLE_SHORT) == detail["history"]
    assert seen.end["status"] == "completed" and seen.frame["iteration"] == 1500
    assert model["iteration"] == 1500 and len(model["layers"]) == 2


def test_test_split_metrics_and_a_frame_of_100x100_under_16_kib(mode_client: ClientFactory) -> None:
    body = {"dataset": {"test_fraction": 0.3}, "training": {"iterations": 200}}
    with mode_client() as client:
        _, seen = _stream_to_end(client, body)
    # A 200-step run may end before the socket joins: then every entry is in the snapshot.
    assert len(seen.progress) == 3 and {"test_loss", "test_accuracy"} <= set(seen.progress[-1])
    assert seen.frame is not None
    assert seen.frame["grid"]["nx"] == 100 and len(seen.frame["data"]) <= 16 * 1024


def test_divergence_ends_as_diverged_with_a_message_and_strict_json(
    mode_client: ClientFactory,
) -> None:
    body = {
        "model": {"hidden_sizes": [50], "activation": "relu"},
        "training": {"learning_rate": 10.0, "reg_lambda": 0.0, "iterations": 2000},
    }
    with mode_client() as client:
        run_id = client.post("/api/runs", json=body).json()["id"]
        with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
            texts = []
            while True:
                texts.append(ws.receive_text())
                if is_terminal(strict_loads(texts[-1])):
                    break
        detail = strict_loads(client.get(f"/api/runs/{run_id}").text)
        csv_text = client.get(f"/api/runs/{run_id}/history.csv").text
    for text in texts:  # a browser's JSON.parse accepts every message
        strict_loads(text)
    end = strict_loads(texts[-1])
    assert end["status"] == "diverged" and len(end["message"]) > 10
    assert detail["status"] == "diverged" and detail["message"] == end["message"]
    assert "nan" not in csv_text.lower()
    for entry in detail["history"]:
        assert entry["loss"] is None or math.isfinite(entry["loss"])


def test_real_run_pause_step_export_resume_cancel(mode_client: ClientFactory) -> None:
    body = {"training": {"iterations": 200_000, "report_every": 50, "steps_per_second": 500.0}}
    with mode_client() as client:
        run_id = client.post("/api/runs", json=body).json()["id"]
        base = f"/api/runs/{run_id}"
        with client.websocket_connect(f"{base}/stream") as ws:
            read_until(ws, lambda m: m.get("type") == "progress" and m["iteration"] > 0)
            assert client.post(f"{base}/pause").json()["status"] == "paused"
            k = client.get(base).json()["iteration"]
            stepped = client.post(f"{base}/step").json()
            assert stepped["status"] == "paused" and stepped["iteration"] >= k + 1
            model = client.get(f"{base}/model").json()
            assert model["iteration"] == stepped["iteration"]  # exported from the worker
            ws.send_json({"action": "resume"})
            read_until(ws, lambda m: m.get("status") == "running")
            ws.send_json({"action": "cancel"})
            end = read_until(ws, is_terminal)[-1]
        assert end["status"] == "cancelled" and "Cancelled" in end["message"]
        assert client.get(base).json()["status"] == "cancelled"


def _final_history(client: TestClient, run_id: str, timeout: float = 120.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = client.get(f"/api/runs/{run_id}").json()
        if detail["status"] in ("completed", "failed", "cancelled", "diverged"):
            assert detail["status"] == "completed", detail
            return list(detail["history"])
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end")


def test_a_run_interleaved_with_many_others_in_one_worker_is_bit_identical() -> None:
    paced = {"training": {**ARTICLE_SHORT["training"], "steps_per_second": 1000}}
    others = [{"training": {**ARTICLE_SHORT["training"], "seed": s}} for s in range(1, 3)]
    others += [{"training": {**paced["training"], "seed": s}} for s in range(3, 11)]
    with make_client(mode="process", max_running=16, worker_processes=1) as client:
        alone = client.post("/api/runs", json=paced).json()["id"]
        reference = _final_history(client, alone)
        ids = [client.post("/api/runs", json=body).json()["id"] for body in others]
        twin = client.post("/api/runs", json=paced).json()["id"]
        # All eleven were admitted at once, onto the one worker: they train interleaved.
        assert client.get(f"/api/runs/{twin}").json()["status"] != "queued"
        pool = client.app.state.service.scheduler  # type: ignore[attr-defined]
        assert pool.size == 1 and pool.counts()["running"] >= 2
        together = _final_history(client, twin)
        for run_id in ids:
            _final_history(client, run_id)
    assert together == reference  # the same floats, to the last bit
    assert [h["iteration"] for h in together][-1] == 1500
