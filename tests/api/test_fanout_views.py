"""Opt-in kinds (messages.OPT_IN_KINDS) reach only the viewers that asked for them."""

from __future__ import annotations

import asyncio

from boundarylab.server.fanout import Fanout
from boundarylab.server.messages import Encoded, snapshot_text


def _drain(viewer) -> list[str]:
    async def take() -> list[str]:
        out = []
        while viewer.pending():
            out.append(await viewer.get())
        return out

    return asyncio.run(take())


def test_units_go_only_to_viewers_that_asked() -> None:
    feed = Fanout()
    plain = feed.subscribe("r", "snap", limit=5, ended=False)
    wanting = feed.subscribe("r", "snap", limit=5, ended=False, views=frozenset({"units"}))
    assert feed.viewers_of("r", "units") == 1
    feed.publish("r", Encoded("units", '{"type":"units"}', 1))
    feed.publish("r", Encoded("boundary", '{"type":"boundary"}', 1))
    assert _drain(plain) == ["snap", '{"type":"boundary"}']
    assert _drain(wanting) == ["snap", '{"type":"units"}', '{"type":"boundary"}']


def test_the_snapshot_carries_units_only_when_asked() -> None:
    latest = {"boundary": '{"b":1}', "units": '{"u":1}'}
    plain = snapshot_text({"id": "r"}, "[]", "{}", latest, {})
    asked = snapshot_text({"id": "r"}, "[]", "{}", latest, {}, frozenset({"units"}))
    assert '"units"' not in plain and '"boundary":{"b":1}' in plain
    assert '"units":{"u":1}' in asked
