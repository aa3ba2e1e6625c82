"""Inside the network: what every input feature and hidden unit computes over the plane.

A unit view is a coarse grid (``UNIT_GRID`` × ``UNIT_GRID`` cells over the boundary's plane)
on which each input feature and each hidden unit's activation is evaluated, one byte per
cell, plus every layer's weights and biases (for the diagram's edges and hover values).

Bytes are a diverging scale, per unit: ``round(127.5 + 127.5·a/s)`` clipped to 0…255, where
``s = max |a|`` over the grid (the unit's stated scale; 1 when the unit is 0 everywhere).
So 0 is the middle of the scale and the sign of an activation is never lost. Only the first
``MAX_UNITS_SHOWN`` units of a layer get a heatmap: a 256-wide layer would otherwise put a
quarter of a megabyte in every frame. Weights go with the first ``MAX_UNITS_LISTED`` units
of each layer (rows and columns): six layers of 256 would otherwise be 3.5 MB a frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from boundarylab.engine import nn
from boundarylab.engine.events import Grid, UnitHeatmap, UnitsFrame

UNIT_GRID = 32  # cells per side: coarser than the boundary's grid, enough for a thumbnail
MAX_UNITS_SHOWN = 16  # heatmaps per layer
MAX_UNITS_LISTED = 64  # units per layer whose weights and bias are sent
WEIGHT_DIGITS = 6  # significant digits of a weight on the wire (hover text shows 4)


def layer_activations(params: nn.Params, X: np.ndarray, activation: str) -> list[np.ndarray]:
    """``[a_0 = X, a_1, …, a_L]``: the inputs (m, d) and each hidden layer's activations
    (m, h_l), as nn.forward computes them (the output layer is left out: the boundary shows
    it)."""
    with np.errstate(all="ignore"):
        hidden = nn.forward(params, X, activation, "cross_entropy")[:-1]
    return [X, *hidden]


def quantise_signed(values: np.ndarray) -> tuple[bytes, float]:
    """One unit's activations over the grid (m,) as m bytes on a symmetric scale, and that
    scale s: byte = round(127.5 + 127.5·a/s). Non-finite activations count as 0, so nothing
    non-finite leaves the engine."""
    finite = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    s = float(np.max(np.abs(finite))) if finite.size else 0.0
    scale = s if s > 0.0 and np.isfinite(s) else 1.0
    cells = np.rint(127.5 + 127.5 * np.clip(finite / scale, -1.0, 1.0)).astype(np.uint8)
    return cells.tobytes(), scale


def rounded(values: np.ndarray) -> list:
    """Weights as nested lists of floats with WEIGHT_DIGITS significant digits (so their JSON
    is short); non-finite weights become 0.0 (a diverged run's last state still draws)."""
    finite = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    magnitude = np.where(finite == 0.0, 1.0, np.abs(finite))
    scale = 10.0 ** (WEIGHT_DIGITS - 1 - np.floor(np.log10(magnitude)))
    return (np.round(finite * scale) / scale).tolist()  # type: ignore[no-any-return]


def units_frame(
    iteration: int,
    grid: Grid,
    params: nn.Params,
    grid_inputs: np.ndarray,
    activation: str,
    layer_names: Sequence[Sequence[str]],
) -> UnitsFrame:
    """The unit view at ``iteration``: ``grid_inputs`` (grid.ny·grid.nx, d) are the features
    of the grid's cell centres (row-major from (x_min, y_min)); ``layer_names[l]`` names the
    units of layer l (l = 0: the features). Heatmaps for the first MAX_UNITS_SHOWN units of
    each layer; weights ``W`` (fan_in, fan_out) and ``b`` (fan_out,) of every layer, cut to
    its first MAX_UNITS_LISTED rows and columns."""
    layers: list[tuple[UnitHeatmap, ...]] = []
    activations = layer_activations(params, grid_inputs, activation)
    for names, acts in zip(layer_names, activations, strict=True):
        shown = min(acts.shape[1], MAX_UNITS_SHOWN)
        maps = []
        for u in range(shown):
            cells, scale = quantise_signed(acts[:, u])
            maps.append(UnitHeatmap(names[u], scale, cells))
        layers.append(tuple(maps))
    cap = MAX_UNITS_LISTED
    weights = tuple((rounded(W[:cap, :cap]), rounded(b[:cap])) for W, b in params)
    sizes = (*(len(names) for names in layer_names), params[-1][1].shape[0])
    return UnitsFrame(iteration, grid, sizes, tuple(layers), weights)


def unit_names(features: Sequence[str], hidden_sizes: Sequence[int]) -> list[list[str]]:
    """Names of the units of every layer but the output: the features, then "h<l>.<u>"
    (layer l counting from 1, unit u from 1)."""
    names = [list(features)]
    for layer, width in enumerate(hidden_sizes, start=1):
        names.append([f"h{layer}.{u}" for u in range(1, width + 1)])
    return names
