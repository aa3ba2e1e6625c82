"""The default scheduler (pool.WorkerPool, thread workers) and the typed worker protocol,
without HTTP: what it reports through RunEvents, in order."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from boundarylab.engine.config import RunConfig
from boundarylab.engine.knobs import Retune
from boundarylab.server import placement
from boundarylab.server.capacity import paced_cores
from boundarylab.server.errors import Busy, Invalid
from boundarylab.server.messages import Encoded, dumps
from boundarylab.server.pool import WorkerPool
from boundarylab.server.protocol import Done, EventReader, EventWriter, Ready, RunMessage


class Steps:
    """A run of `training.iterations` steps, one per 10 ms wait (the first after 0.5 s, so a
    command sent with its start always comes first); obeys pause/resume/cancel."""

    def __init__(self, config: RunConfig, emit: Callable[[dict], None], next_command: Any):
        self.config, self.emit, self.next_command, self.k = config, emit, next_command, 0

    def run(self) -> str:
        self.emit({"type": "status", "status": "running"})
        paused = False
        while self.k < self.config.training.iterations:
            command = self.next_command(0.5 if self.k == 0 else 0.01)
            if command == "cancel":
                return "cancelled"
            if command in ("pause", "resume"):
                paused = command == "pause"
                self.emit({"type": "status", "status": "paused" if paused else "running"})
            elif command is None and not paused:
                self.k += 1
                self.emit({"type": "progress", "iteration": self.k, "loss": 1.0,
                           "train_accuracy": 0.5})  # fmt: skip
        return "completed"

    def export_model(self) -> dict:
        return {"iteration": self.k}


class Events:
    """RunEvents that writes down what it is told."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def queued(self, run_id: str, position: int, wait_s: float | None = None) -> None:
        self.log.append(("queued", run_id, position))

    def started(self, run_id: str) -> None:
        self.log.append(("started", run_id))

    def message(self, run_id: str, message: Encoded) -> None:
        self.log.append(("message", run_id, message))

    def done(self, run_id: str, status: str, model: dict | None) -> None:
        self.log.append(("done", run_id, status, model))

    def aborted(self, run_id: str, status: str, reason: str) -> None:
        self.log.append(("aborted", run_id, status, reason))

    def about(self, run_id: str, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.log if e[1] == run_id and e[0] == kind]

    def ended(self, run_id: str) -> bool:
        return bool(self.about(run_id, "done") or self.about(run_id, "aborted"))


def _config(iterations: int) -> RunConfig:
    return RunConfig.model_validate({"training": {"iterations": iterations}})


async def _until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


def _with_pool(
    scenario: Callable[[WorkerPool, Events], Awaitable[None]], size: int = 1, max_queued: int = 5
) -> None:
    async def main() -> None:
        pool, events = WorkerPool(size, "thread", Steps, max_queued), Events()
        await pool.start(events)
        try:
            await scenario(pool, events)
        finally:
            await pool.cancel_all("test over", 5.0)
            await pool.shutdown(5.0)

    asyncio.run(main())


def test_runs_wait_in_order_a_queued_one_can_be_cancelled_and_the_next_moves_up() -> None:
    async def scenario(pool: WorkerPool, events: Events) -> None:
        for run_id in "abc":
            pool.check_capacity()
            pool.submit(run_id, _config(10_000))
        assert events.log[:3] == [("started", "a"), ("queued", "b", 1), ("queued", "c", 2)]
        assert pool.counts() == {"running": 1, "queued": 2}
        pool.control("b", "cancel")
        assert events.about("b", "aborted") == [
            ("aborted", "b", "cancelled", "cancelled before it started")
        ]
        assert events.log[-1] == ("queued", "c", 1)
        pool.control("a", "cancel")
        await _until(lambda: bool(events.about("c", "started")))
        assert events.about("a", "done")[0][2] == "cancelled"
        assert not events.about("b", "started")  # a cancelled run never starts

    _with_pool(scenario)


def test_a_full_pool_refuses_and_a_pause_asked_in_the_queue_applies_at_start() -> None:
    async def scenario(pool: WorkerPool, events: Events) -> None:
        pool.submit("a", _config(10_000))
        pool.submit("b", _config(10_000))
        with pytest.raises(Busy, match="full: 1 runs training and 1 waiting"):
            pool.check_capacity()
        pool.control("b", "pause")
        pool.control("a", "cancel")
        await _until(lambda: any(m.status == "paused" for *_, m in events.about("b", "message")))
        progress = [m for *_, m in events.about("b", "message") if m.kind == "progress"]
        assert not progress  # paused before its first step

    _with_pool(scenario, max_queued=1)


def test_messages_arrive_encoded_and_exports_come_from_the_running_worker() -> None:
    async def scenario(pool: WorkerPool, events: Events) -> None:
        pool.submit("a", _config(30))
        await _until(lambda: len(events.about("a", "message")) > 3)
        model = await pool.export("a")
        assert model is not None and model["iteration"] >= 1
        await _until(lambda: events.ended("a"))
        messages = [m for *_, m in events.about("a", "message")]
        first = messages[1]
        assert first.kind == "progress" and first.iteration == 1
        assert first.text == dumps({"type": "progress", "iteration": 1, "loss": 1.0,
                                    "train_accuracy": 0.5})  # fmt: skip
        assert first.entry == '{"iteration":1,"loss":1.0,"train_accuracy":0.5}'
        assert events.about("a", "done") == [("done", "a", "completed", {"iteration": 30})]
        assert await pool.export("a") is None  # not running any more

    _with_pool(scenario)


def test_cancel_all_ends_running_and_queued_runs() -> None:
    async def scenario(pool: WorkerPool, events: Events) -> None:
        pool.submit("a", _config(100_000))
        pool.submit("b", _config(100_000))
        await pool.cancel_all("the server is shutting down", 5.0)
        assert events.about("b", "aborted")[0][2:] == ("cancelled", "the server is shutting down")
        assert events.about("a", "done")[0][2] == "cancelled"
        assert pool.counts() == {"running": 0, "queued": 0}

    _with_pool(scenario)


def test_worker_events_travel_as_typed_length_prefixed_pickles() -> None:
    receiving, sending = multiprocessing.Pipe(duplex=False)
    writer, reader = EventWriter(sending), EventReader()
    message = Encoded("progress", '{"type":"progress"}', 1, entry="{}")
    sent = [Ready(), RunMessage("r", message), Done("r", "completed", {"W": [1.0]})]
    for event in sent:
        writer.send(event)
    writer.close()
    raw = b""
    while chunk := os.read(receiving.fileno(), 1 << 16):
        raw += chunk
    receiving.close()
    got = []
    for start in range(0, len(raw), 7):  # bytes arrive in pieces: events only when whole
        reader._buffer += raw[start : start + 7]
        got += reader.events()
    assert got == sent


def test_a_workers_round_of_events_goes_out_in_one_write_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside `held()` (a worker's round of ticks) events are gathered and written in one
    os.write at its end, frames and order unchanged; outside, each at once."""
    from boundarylab.server import protocol

    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: Any) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(protocol.os, "write", counting_write)
    receiving, sending = multiprocessing.Pipe(duplex=False)
    writer, reader = EventWriter(sending), EventReader()
    sent = [RunMessage("r", Encoded("progress", f'{{"i":{i}}}', i)) for i in range(5)]
    with writer.held():
        for event in sent[:4]:
            writer.send(event)
        assert writes == []  # nothing out until the round ends
    assert len(writes) == 1
    writer.send(sent[4])
    assert len(writes) == 2
    writer.close()
    while chunk := os.read(receiving.fileno(), 1 << 16):
        reader._buffer += chunk
    receiving.close()
    assert reader.events() == sent


def test_commands_to_a_stopped_worker_never_block_the_loop_and_end_in_busy() -> None:
    """Issue 11, finding 9: a worker that reads nothing (SIGSTOP) must not make the event
    loop block on a full pipe. Commands queue up to a bound, then are refused (429)."""

    async def main() -> None:
        pool, events = WorkerPool(1, "process", max_queued=5), Events()
        await pool.start(events)
        try:
            await _until(lambda: pool.ready() == 1)
            pool.submit("r", RunConfig.model_validate(
                {"training": {"iterations": 20_000, "steps_per_second": 100}}))  # fmt: skip
            await _until(lambda: bool(events.about("r", "started")))
            (pid,) = pool.worker_pids()
            os.kill(pid, signal.SIGSTOP)
            try:
                refused = None
                for sent in range(100_000):  # every call returns at once, or this hangs
                    try:
                        pool.control("r", "pause" if sent % 2 else "resume")
                    except Busy as exc:
                        refused = (sent, exc)
                        break
                assert refused is not None and "not keeping up" in str(refused[1])
                assert refused[0] > 100  # a bound worth having, not a refusal of everything
            finally:
                os.kill(pid, signal.SIGCONT)
        finally:
            await pool.cancel_all("test over", 5.0)
            await pool.shutdown(5.0)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_unwatched_runs_make_only_their_first_and_last_frames() -> None:
    async def main() -> None:
        pool, events = WorkerPool(2, "thread", max_queued=5), Events()
        await pool.start(events)
        try:
            body = {"training": {"iterations": 1500, "steps_per_second": 3000}}
            for run_id in ("watched", "unwatched"):
                pool.submit(run_id, RunConfig.model_validate(body))
            pool.frames("unwatched", False)
            await _until(lambda: events.ended("watched") and events.ended("unwatched"))
            frames = {
                run_id: [m.iteration for _, _, m in events.about(run_id, "message")
                         if m.kind == "boundary"]
                for run_id in ("watched", "unwatched")
            }  # fmt: skip
            assert frames["unwatched"] == [0, 1500]
            # Watched, frames come in between too. How many depends on the machine: frames
            # are spaced in time, and a busy worker behind its pace takes the steps in bursts
            # (a busy round saw 0, 300, 1500 where a quiet machine makes about ten).
            assert len(frames["watched"]) > 2 and frames["watched"][-1] == 1500
        finally:
            await pool.cancel_all("test over", 5.0)
            await pool.shutdown(5.0)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_unpaced_runs_start_at_once_and_share_a_worker_in_turns() -> None:
    """Six unpaced runs on one worker all start (and so show a first frame) at once: they
    share its CPU in turns instead of waiting for each other (issue 15, bench/load.py)."""

    async def scenario(pool: WorkerPool, events: Events) -> None:
        ids = [f"r{i}" for i in range(6)]
        for run_id in ids:
            pool.submit(run_id, _config(1000))
        await _until(lambda: all(events.about(r, "started") for r in ids))
        assert not [e for e in events.log if e[0] == "queued"]

    async def main() -> None:
        pool, events = WorkerPool(64, "thread", Steps, 5, processes=1), Events()
        await pool.start(events)
        try:
            await scenario(pool, events)
        finally:
            await pool.cancel_all("test over", 5.0)
            await pool.shutdown(5.0)

    asyncio.run(main())


def _places(events: Events, queued: list[str]) -> dict[str, int]:
    """The place last reported to each run of `queued`."""
    return {r: events.about(r, "queued")[-1][2] for r in queued}


def _fair_order(queued: list[str], running: list[str], client: dict[str, str]) -> list[str]:
    """The rule, written plainly: again and again, the oldest queued run of the client with
    the fewest running runs (ties: the older run), which then counts as running."""
    counts = {c: sum(client[r] == c for r in running) for c in client.values()}
    left, order = list(queued), []
    while left:
        pick = min(left, key=lambda r: (counts[client[r]], left.index(r)))
        left.remove(pick)
        order.append(pick)
        counts[client[pick]] += 1
    return order


def test_the_queue_is_shared_fairly_between_clients_and_places_are_the_dispatch_order() -> None:
    """A queues six runs, then B two and C one: with two places, B's and C's runs start at the
    next free places, not after all of A's (issue 11). Each place reported is the run's
    place in the order dispatch follows, and each free place goes to the run the rule picks
    (a run that ends lowers its client's count, so the order can change when one does)."""

    async def scenario(pool: WorkerPool, events: Events) -> None:
        client = {f"a{i}": "A" for i in range(1, 7)} | {"b1": "B", "b2": "B", "c1": "C"}
        for run_id, who in client.items():
            pool.submit(run_id, _config(100_000), client=who)
        assert [e[1] for e in events.log if e[0] == "started"] == ["a1", "a2"]
        running, queued = ["a1", "a2"], [r for r in client if r not in ("a1", "a2")]
        # A holds both places: B's and C's runs are next, in turn, then A's in its order.
        assert _places(events, queued) == {"b1": 1, "c1": 2, "b2": 3, "a3": 4, "a4": 5,
                                           "a5": 6, "a6": 7}  # fmt: skip
        while queued:
            order = _fair_order(queued, running, client)
            assert _places(events, queued) == {r: i for i, r in enumerate(order, start=1)}
            pool.control(running.pop(0), "cancel")  # a place frees
            expected = _fair_order(queued, running, client)[0]
            await _until(lambda: any(events.about(r, "started") for r in queued))
            assert [r for r in queued if events.about(r, "started")] == [expected]
            queued.remove(expected)
            running.append(expected)
        started = [e[1] for e in events.log if e[0] == "started"]
        assert started[2] == "b1", started  # B's first run took the first free place

    _with_pool(scenario, size=2, max_queued=20)


def test_a_client_alone_still_gets_every_free_place() -> None:
    async def scenario(pool: WorkerPool, events: Events) -> None:
        for i in range(5):
            pool.submit(f"a{i}", _config(100_000), client="A")
        assert [e[1] for e in events.log if e[0] == "started"] == ["a0", "a1", "a2"]
        assert _places(events, ["a3", "a4"]) == {"a3": 1, "a4": 2}
        pool.control("a1", "cancel")
        await _until(lambda: bool(events.about("a3", "started")))
        assert events.about("a4", "queued")[-1][2] == 1 and not events.about("a4", "started")

    _with_pool(scenario, size=3, max_queued=20)


def test_a_raised_pace_counts_against_its_worker_from_then_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A paced run whose pace was raised is counted at its new pace at once: a paced run that
    fitted beside its old pace now waits. (Fake runs send no measured load, so the counting
    shown is the estimate's, which stands until heartbeats measure the new pace.)"""
    monkeypatch.setattr(placement, "SETTLE_S", 1.0)

    def paced(sps: float) -> RunConfig:
        return RunConfig.model_validate({"training": {"iterations": 100_000,
                                                      "steps_per_second": sps}})  # fmt: skip

    async def scenario(pool: WorkerPool, events: Events) -> None:
        pool.submit("a", paced(1000))
        pool.submit("b", paced(1000))
        await asyncio.sleep(1.2)  # past SETTLE_S: their estimates are no longer counted
        assert paced_cores(paced(50_000)) + paced_cores(paced(40_000)) > placement.HEADROOM
        pool.control("a", Retune(steps_per_second=50_000))  # fits beside b's 1000
        pool.submit("c", paced(40_000))  # would fit beside a's old pace, not its new one
        assert events.about("c", "queued") and not events.about("c", "started")
        with pytest.raises(Invalid, match="use at most") as refused:
            pool.control("b", Retune(steps_per_second=1_000_000))
        assert refused.value.loc == ("training", "steps_per_second")

    async def main() -> None:
        pool, events = WorkerPool(8, "thread", Steps, 5, processes=1), Events()
        await pool.start(events)
        try:
            await scenario(pool, events)
        finally:
            await pool.cancel_all("test over", 5.0)
            await pool.shutdown(5.0)

    asyncio.run(asyncio.wait_for(main(), 60))
