"""The unit view travels only to viewers that asked for it (engine in thread workers)."""

from __future__ import annotations

from api_support import is_terminal, make_client, read_until, strict_loads

# Paced, so the run is still training when the sockets join (and if it is not, the
# assertions below hold anyway: the final view is in the snapshot).
PACED = {
    "model": {"hidden_sizes": [4, 3]},
    "training": {"iterations": 3000, "report_every": 100, "steps_per_second": 2000},
}


def _to_end(ws) -> list[dict]:
    return read_until(ws, is_terminal)


def _units(messages: list[dict]) -> list[dict]:
    out = [m for m in messages if m["type"] == "units"]
    out += [m["units"] for m in messages if m["type"] == "snapshot" and m.get("units")]
    return out


def test_only_a_viewer_that_asked_gets_units_and_a_late_one_gets_the_final_view() -> None:
    with make_client() as client:
        run_id = client.post("/api/runs", json=PACED).json()["id"]
        url = f"/api/runs/{run_id}/stream"
        with (
            client.websocket_connect(url) as plain,
            client.websocket_connect(f"{url}?views=units") as wanting,
        ):
            seen_wanting = _to_end(wanting)
            seen_plain = _to_end(plain)
        with client.websocket_connect(f"{url}?views=units") as late:
            snapshot = strict_loads(late.receive_text())
        with client.websocket_connect(url) as late_plain:
            plain_snapshot = strict_loads(late_plain.receive_text())
    assert not any(m["type"] == "units" for m in seen_plain)
    assert "units" not in seen_plain[0] and "units" not in plain_snapshot
    frames = _units(seen_wanting)
    assert frames and frames[-1]["iteration"] == 3000
    assert frames[-1]["sizes"] == [2, 4, 3, 2]
    assert [len(layer) for layer in frames[-1]["layers"]] == [2, 4, 3]
    assert snapshot["units"]["iteration"] == 3000  # a finished run's final view


def test_a_client_message_turns_units_on_mid_run_and_bad_ones_are_named() -> None:
    with make_client() as client:
        run_id = client.post("/api/runs", json=PACED).json()["id"]
        with client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
            ws.send_json({"view": "pixels", "on": True})
            ws.send_json({"view": "units", "on": True})
            seen = _to_end(ws)
    if is_terminal(seen[0]):
        return  # the run ended before the socket joined: nothing left to turn on
    errors = [m for m in seen if m["type"] == "error"]
    assert errors and "units" in errors[0]["message"]
    assert seen[-2]["type"] == "units" and seen[-2]["iteration"] == 3000
