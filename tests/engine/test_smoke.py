"""A first end-to-end pass: the default run trains, reports and draws its boundary."""

from __future__ import annotations

import base64

from boundarylab.training import RunLoop, Trainer


def test_trainer_reports_and_boundary_frame_have_the_wire_shape(
    make_config, assert_json_safe
) -> None:
    trainer = Trainer(make_config(training={"iterations": 50}))
    assert trainer.iteration == 0 and not trainer.done
    assert trainer.advance(80) == 50 and trainer.done
    report = trainer.report()
    assert report["type"] == "progress" and report["iteration"] == 50
    assert set(report) == {"type", "iteration", "loss", "train_accuracy"}
    frame = trainer.boundary()
    assert frame["encoding"] == "p1-uint8-base64"
    assert len(base64.b64decode(frame["data"])) == 100 * 100
    assert len(frame["data"]) <= 16 * 1024
    for msg in (report, frame, trainer.dataset_json(), trainer.export_model()):
        assert_json_safe(msg)


def test_runloop_emits_running_first_and_completed_last(make_config) -> None:
    messages: list[dict] = []
    loop = RunLoop(make_config(training={"iterations": 300}), messages.append, lambda _: None)
    assert loop.run() == "completed"
    kinds = [(m["type"], m.get("status"), m.get("iteration")) for m in messages]
    assert kinds[:3] == [("status", "running", None), ("progress", None, 0), ("boundary", None, 0)]
    assert kinds[-3:] == [
        ("progress", None, 300),
        ("boundary", None, 300),
        ("status", "completed", None),
    ]
