"""What a training run reports, as typed events: no wire format, no JSON, no base64.

``RunLoop`` hands one of these to its ``emit`` callback for everything a watcher may want to
know. The server turns each into a wire message in exactly one place
(``boundarylab.server.messages``); the command line prints them. Floats are kept as the
engine computed them, NaN and infinity included: deciding how a non-finite number travels
is the wire format's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RunStatus = Literal["queued", "running", "paused", "completed", "cancelled", "diverged", "failed"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "cancelled", "diverged", "failed"})

# What a person (or the server on their behalf) can ask a running loop to do.
Action = Literal["pause", "resume", "step", "cancel"]
ACTIONS: frozenset[str] = frozenset({"pause", "resume", "step", "cancel"})
# What the server asks of a running loop on its viewers' behalf: start or stop computing
# unit views (a viewer opened or closed the network view). Not a person's control action.
UNITS_ON, UNITS_OFF = "units_on", "units_off"


@dataclass(frozen=True, slots=True)
class Progress:
    """Loss and accuracy at ``iteration`` (the state after that many updates).

    ``loss`` is the article's loss on the training set (λ term included); ``test_loss`` (mean
    data loss, no λ term) and ``test_accuracy`` are None when the run has no test split.
    """

    iteration: int
    loss: float
    train_accuracy: float
    test_loss: float | None = None
    test_accuracy: float | None = None


@dataclass(frozen=True, slots=True)
class Grid:
    """The plane a frame covers: ``nx`` × ``ny`` cell centres from (x_min, y_min) to
    (x_max, y_max) inclusive, row-major, row 0 at y_min."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    nx: int
    ny: int


@dataclass(frozen=True, slots=True)
class BoundaryFrame:
    """The network's decision over ``grid`` at ``iteration``, one byte per cell.

    ``n_classes`` = 2: ``cells`` is ny·nx bytes, round(255·P(class 1)).
    ``n_classes`` > 2: ny·nx bytes of the argmax class, then ny·nx bytes round(255·max p).
    """

    iteration: int
    grid: Grid
    n_classes: int
    cells: bytes


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """The run entered ``status``; ``message`` says why for failed, diverged, cancelled."""

    status: RunStatus
    message: str | None = None


@dataclass(frozen=True, slots=True)
class UnitHeatmap:
    """One unit's activation over a unit grid: ny·nx bytes, round(127.5 + 127.5·a/scale)
    (see unitview.quantise_signed); ``scale`` is max |a| over the grid."""

    name: str
    scale: float
    cells: bytes


@dataclass(frozen=True, slots=True)
class UnitsFrame:
    """Inside the network at ``iteration`` (see unitview.py): ``sizes`` the width of every
    layer, input features first and output last; ``layers[l]`` the heatmaps of the first
    units of layer l (l = 0: the features; the output has none); ``weights[l]`` the
    (W (fan_in, fan_out), b (fan_out,)) as nested lists, of the layer that feeds layer l+1."""

    iteration: int
    grid: Grid
    sizes: tuple[int, ...]
    layers: tuple[tuple[UnitHeatmap, ...], ...]
    weights: tuple[tuple[list, list], ...]


@dataclass(frozen=True, slots=True)
class KnobsChanged:
    """From step ``iteration`` + 1 on, the run trains with ``changed`` (the knobs a person
    turned: learning_rate, reg_lambda, steps_per_second); ``current`` holds all three as
    they now are (steps_per_second None: unpaced). See knobs.py."""

    iteration: int
    changed: dict[str, float]
    current: dict[str, float | None]


RunEvent = Progress | BoundaryFrame | UnitsFrame | StatusChanged | KnobsChanged
