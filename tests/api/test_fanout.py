"""The per-viewer outbox: progress and status never dropped, frames conflated, bounded."""

from __future__ import annotations

import asyncio

from boundarylab.engine.config import RunConfig
from boundarylab.server.fanout import Run, Viewer
from boundarylab.server.messages import dumps


async def _drain(viewer: Viewer) -> list[str]:
    out = []
    while (text := await viewer.get()) is not None:
        out.append(text)
    return out


def test_a_slow_viewer_gets_every_small_message_and_only_the_latest_frame() -> None:
    async def scenario() -> list[str]:
        viewer = Viewer()
        viewer.put("snapshot")
        for k in range(5):
            viewer.put(f"progress {k}")
            viewer.put(f"frame {k}", frame=True)
        viewer.put("status completed")
        viewer.finish()
        return await _drain(viewer)

    assert asyncio.run(scenario()) == [
        "snapshot",
        "progress 0",
        "progress 1",
        "progress 2",
        "progress 3",
        "progress 4",
        "frame 4",
        "status completed",
    ]


def test_a_viewer_whose_backlog_overflows_is_closed_not_grown() -> None:
    async def scenario() -> tuple[bool, str | None]:
        viewer = Viewer(max_backlog=10)
        for k in range(11):
            viewer.put(f"progress {k}")
        return viewer.overflowed, await viewer.get()

    assert asyncio.run(scenario()) == (True, None)


def test_get_waits_for_the_next_message() -> None:
    async def scenario() -> str | None:
        viewer = Viewer()
        waiting = asyncio.create_task(viewer.get())
        await asyncio.sleep(0)
        assert not waiting.done()
        viewer.put("progress 1")
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario()) == "progress 1"


def test_a_finished_runs_history_is_kept_as_one_json_text_and_reads_back_the_same() -> None:
    async def scenario() -> None:
        run = Run("r", RunConfig(), "client", "{}")
        entries = [
            {"iteration": k * 100, "loss": 0.1 / (k + 1), "train_accuracy": 0.5, "test_loss": None}
            for k in range(50)
        ]
        for entry in entries:
            run.add_progress(dict(entry))
        assert run.history == entries and run.history_json() == dumps(entries)
        run.compact()
        assert isinstance(run._history_text, str) and run._entries == []  # one block, no dicts
        assert run.history == entries  # the same keys, order and floats, bit for bit
        assert run.history_json() == dumps(entries)
        assert run.metrics() == entries[-1]

    asyncio.run(scenario())
