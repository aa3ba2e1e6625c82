"""RunConfig's ``view`` section: how the decision boundary is streamed."""

from __future__ import annotations

from pydantic import Field

from boundarylab.engine.strict_model import StrictModel

MIN_RESOLUTION = 20
MAX_RESOLUTION = 300


class ViewConfig(StrictModel):
    """How the decision boundary is streamed."""

    resolution: int = Field(
        100,
        ge=MIN_RESOLUTION,
        le=MAX_RESOLUTION,
        description="Cells per side of the decision-boundary grid.",
    )
    max_fps: float = Field(
        20.0, gt=0.0, le=60.0, description="At most this many boundary frames a second."
    )
