"""Named run configurations that tell a story, for the page and the command line.

A preset is a partial config (the sections that differ from the defaults), so a person can
start from it and change any field. ``FEATURE_CONTRAST`` is the article's remark made
visible: a network without a hidden layer draws a straight line and cannot separate two
circles from x1, x2 (about half the points right), yet separates them completely once the
hand-made features x1², x2² are added: the line in (x1², x2²) is a circle in (x1, x2).
The circles' noise is 0.1 rather than the default 0.2, at which the two rings overlap so much
that no circle separates more than ~89 % of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from boundarylab.engine.config import LIMITS_CONTEXT_KEY, Limits, RunConfig


@dataclass(frozen=True)
class Preset:
    """``sections``: the RunConfig fields that differ from the defaults, as JSON."""

    name: str
    title: str
    description: str
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def config(self, limits: Limits | None = None) -> RunConfig:
        """The preset as a validated RunConfig (against ``limits`` when given)."""
        context = {LIMITS_CONTEXT_KEY: limits} if limits is not None else None
        return RunConfig.model_validate(self.sections, context=context)


_CIRCLES = {"kind": "circles", "noise": 0.1}

ARTICLE = Preset(
    "article",
    "The article's network",
    "300 moons points, one hidden layer of 3 tanh units, 20000 steps of gradient descent.",
)
CIRCLES_STRAIGHT = Preset(
    "circles-no-hidden-layer",
    "No hidden layer: a straight line",
    "Two circles, a network without a hidden layer on x1, x2: the best it can draw is a "
    "straight line, which gets about half the points right.",
    {"dataset": _CIRCLES, "model": {"hidden_sizes": [], "features": ["x1", "x2"]}},
)
CIRCLES_SQUARED = Preset(
    "circles-squared-features",
    "No hidden layer, squared features: a circle",
    "The same network given x1² and x2² as well: a straight line in those features is a "
    "circle in the plane, and it separates the rings.",
    {
        "dataset": _CIRCLES,
        "model": {"hidden_sizes": [], "features": ["x1", "x2", "x1_sq", "x2_sq"]},
    },
)

PRESETS: dict[str, Preset] = {p.name: p for p in (ARTICLE, CIRCLES_STRAIGHT, CIRCLES_SQUARED)}
# Hand-made features versus none, on the same data and network: (without, with).
FEATURE_CONTRAST: tuple[str, str] = (CIRCLES_STRAIGHT.name, CIRCLES_SQUARED.name)
