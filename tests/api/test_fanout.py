"""The per-viewer outbox and the fan-out of each run's messages to its viewers."""

from __future__ import annotations

import asyncio

import pytest

from boundarylab.server.errors import TooManyViewers
from boundarylab.server.fanout import Fanout, Viewer
from boundarylab.server.messages import encode


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
            viewer.put(f"frame {k}", conflate="boundary")
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


def test_each_conflated_kind_has_its_own_slot_and_order_stays_causal() -> None:
    """A second kind of frame never evicts the boundary frame (nor the other way round);
    each kind's latest sits after every message that came before it."""

    async def scenario() -> list[str]:
        viewer = Viewer()
        viewer.put("boundary 1", conflate="boundary")
        viewer.put("neurons 1", conflate="neurons")
        viewer.put("progress 1")
        viewer.put("boundary 2", conflate="boundary")
        viewer.put("status paused")
        viewer.put("neurons 2", conflate="neurons")
        viewer.finish()
        return await _drain(viewer)

    assert asyncio.run(scenario()) == ["progress 1", "boundary 2", "status paused", "neurons 2"]


def test_a_viewer_whose_backlog_overflows_is_closed_not_grown() -> None:
    async def scenario() -> tuple[bool, str | None]:
        viewer = Viewer(max_backlog=10)
        for k in range(11):
            viewer.put(f"progress {k}")
        return viewer.overflowed, await viewer.get()

    assert asyncio.run(scenario()) == (True, None)


def test_frames_never_count_towards_the_backlog() -> None:
    async def scenario() -> bool:
        viewer = Viewer(max_backlog=3)
        for k in range(1000):
            viewer.put(f"frame {k}", conflate="boundary")
            viewer.put(f"neurons {k}", conflate="neurons")
        return viewer.overflowed or viewer.pending() != 2

    assert asyncio.run(scenario()) is False


def test_get_waits_for_the_next_message() -> None:
    async def scenario() -> str | None:
        viewer = Viewer()
        waiting = asyncio.create_task(viewer.get())
        await asyncio.sleep(0)
        assert not waiting.done()
        viewer.put("progress 1")
        return await asyncio.wait_for(waiting, 5)

    assert asyncio.run(scenario()) == "progress 1"


def test_fanout_sends_one_text_to_every_viewer_of_that_run_only() -> None:
    async def scenario() -> None:
        feed = Fanout()
        a = feed.subscribe("r1", "snap a", limit=5, ended=False)
        b = feed.subscribe("r1", "snap b", limit=5, ended=False)
        other = feed.subscribe("r2", "snap other", limit=5, ended=False)
        progress = encode({"type": "progress", "iteration": 1, "loss": 0.5, "train_accuracy": 1})
        frame = encode({"type": "boundary", "iteration": 1, "data": "x"})
        feed.publish("r1", progress)
        feed.publish("r1", frame)
        feed.publish("r1", encode({"type": "boundary", "iteration": 2, "data": "y"}))
        assert feed.viewers("r1") == 2 and feed.unsent() == 3 + 3 + 1
        feed.end("r1")
        for viewer, snap in ((a, "snap a"), (b, "snap b")):
            texts = await _drain(viewer)
            assert texts[:2] == [snap, progress.text] and '"iteration":2' in texts[2]
            assert len(texts) == 3
        assert other.pending() == 1 and not other.finished
        feed.unsubscribe("r1", a)
        assert feed.viewers("r1") == 1

    asyncio.run(scenario())


def test_fanout_limits_viewers_and_a_finished_run_gets_only_its_snapshot() -> None:
    async def scenario() -> None:
        feed = Fanout()
        feed.subscribe("r", "s", limit=1, ended=False)
        with pytest.raises(TooManyViewers):
            feed.subscribe("r", "s", limit=1, ended=False)
        late = feed.subscribe("done", "final snapshot", limit=1, ended=True)
        assert await _drain(late) == ["final snapshot"]
        # A finished run's viewer still holds a slot until it leaves (its snapshot is in
        # flight): finished runs count toward the limits too.
        assert feed.viewers("done") == 1
        with pytest.raises(TooManyViewers):
            feed.subscribe("done", "final snapshot", limit=1, ended=True)
        feed.unsubscribe("done", late)
        assert feed.viewers("done") == 0


def test_fanout_limits_viewers_per_address_and_overflow_calls_back() -> None:
    async def scenario() -> None:
        feed = Fanout(max_backlog=3)
        a = feed.subscribe("r", "s", limit=10, ended=False, address="a", per_address=2)
        feed.subscribe("r", "s", limit=10, ended=False, address="a", per_address=2)
        with pytest.raises(TooManyViewers, match="limit 2"):
            feed.subscribe("r", "s", limit=10, ended=False, address="a", per_address=2)
        feed.subscribe("r", "s", limit=10, ended=False, address="b", per_address=2)
        cut: list[str] = []
        a.on_overflow = lambda: cut.append("a")
        for _ in range(5):  # nobody drains: the backlog passes 3 at enqueue time
            a.put("progress")
        assert cut == ["a"] and a.overflowed

    asyncio.run(scenario())

    asyncio.run(scenario())
