"""Unit views: activations over the plane as bytes, the run loop's opt-in, and the weights."""

from __future__ import annotations

import base64

import numpy as np

from boundarylab.engine import nn
from boundarylab.engine.events import UNITS_ON, StatusChanged, UnitsFrame
from boundarylab.engine.runloop import RunLoop
from boundarylab.engine.training import Trainer
from boundarylab.engine.unitview import (
    MAX_UNITS_LISTED,
    MAX_UNITS_SHOWN,
    UNIT_GRID,
    layer_activations,
    quantise_signed,
    rounded,
    unit_names,
)
from boundarylab.server.messages import dumps, event_message


def test_quantise_signed_keeps_sign_and_states_the_scale() -> None:
    cells, scale = quantise_signed(np.array([-2.0, 0.0, 1.0, 2.0]))
    assert scale == 2.0
    assert list(cells) == [0, 128, 191, 255]  # 127.5 + 127.5·a/2, rounded half to even


def test_quantise_signed_never_passes_non_finite_values() -> None:
    cells, scale = quantise_signed(np.array([np.nan, np.inf, -np.inf, 0.5]))
    assert np.isfinite(scale) and scale == 0.5
    assert list(cells) == [128, 128, 128, 255]
    assert quantise_signed(np.zeros(3)) == (bytes([128, 128, 128]), 1.0)


def test_layer_activations_are_the_forward_pass() -> None:
    params = nn.init_params([2, 4, 3, 2], seed=1)
    X = np.random.default_rng(0).normal(size=(5, 2))
    acts = layer_activations(params, X, "tanh")
    assert [a.shape for a in acts] == [(5, 2), (5, 4), (5, 3)]
    np.testing.assert_array_equal(acts[1], np.tanh(X @ params[0][0] + params[0][1]))


def test_trainer_units_frame_for_hidden_4_3(make_config) -> None:
    config = make_config(model={"hidden_sizes": [4, 3]}, training={"iterations": 10})
    trainer = Trainer(config)
    trainer.advance(10)
    frame = trainer.units()
    assert frame.sizes == (2, 4, 3, 2)
    assert [len(layer) for layer in frame.layers] == [2, 4, 3]
    assert [h.name for h in frame.layers[2]] == ["h2.1", "h2.2", "h2.3"]
    assert all(len(h.cells) == UNIT_GRID * UNIT_GRID for layer in frame.layers for h in layer)
    W0 = trainer.export_model()["layers"][0]["W"]
    np.testing.assert_allclose(np.array(frame.weights[0][0]), W0, rtol=1e-5)
    # x1 over the grid: row-major from (x_min, y_min), so it grows along each row.
    x1 = np.frombuffer(frame.layers[0][0].cells, np.uint8).reshape(UNIT_GRID, UNIT_GRID)
    assert (np.diff(x1[0].astype(int)) >= 0).all() and x1[0, -1] > x1[0, 0]


def test_wide_layers_get_heatmaps_for_the_first_units_only(make_config) -> None:
    frame = Trainer(make_config(model={"hidden_sizes": [40]})).units()
    assert len(frame.layers[1]) == MAX_UNITS_SHOWN
    assert frame.sizes[1] == 40 and len(frame.weights[0][1]) == 40
    assert len(unit_names(["x1"], [40])[1]) == 40
    wide = Trainer(make_config(model={"hidden_sizes": [100, 70]})).units()
    assert wide.sizes == (2, 100, 70, 2)
    W, b = wide.weights[1]
    assert len(W) == MAX_UNITS_LISTED and len(W[0]) == MAX_UNITS_LISTED
    assert len(b) == MAX_UNITS_LISTED


def test_weights_keep_six_significant_digits() -> None:
    values = np.array([[0.123456789, -1234.56789], [0.0, 9.87654321e-5]])
    assert rounded(values) == [[0.123457, -1234.57], [0.0, 9.87654e-5]]
    assert rounded(np.array([np.nan, np.inf])) == [0.0, 0.0]


def run_events(config, commands):
    events = []
    script = iter(commands)
    loop = RunLoop(config, events.append, lambda timeout: next(script, None))
    assert loop.run() == "completed"
    return events


def test_units_only_while_asked_and_always_once_at_the_end(make_config) -> None:
    config = make_config(training={"iterations": 200, "report_every": 10})
    quiet = run_events(config, [])
    units = [e for e in quiet if isinstance(e, UnitsFrame)]
    assert len(units) == 1 and units[0].iteration == 200
    assert isinstance(quiet[-1], StatusChanged) and quiet.index(units[0]) == len(quiet) - 2

    asked = run_events(config, [UNITS_ON])
    frames = [e for e in asked if isinstance(e, UnitsFrame)]
    assert frames[0].iteration == 0  # sent at once when asked
    assert frames[-1].iteration == 200 and len(frames) >= 2


def test_units_message_is_json_safe_and_decodes(make_config) -> None:
    message = event_message(Trainer(make_config()).units())
    assert message["type"] == "units" and message["sizes"] == [2, 3, 2]
    text = dumps(message)
    assert "NaN" not in text and "Infinity" not in text
    data = base64.b64decode(message["layers"][1][0]["data"])
    assert len(data) == message["grid"]["nx"] * message["grid"]["ny"]
