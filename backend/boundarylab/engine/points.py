"""Own data (dataset kind "custom"): what a point is and which sets of points a run takes.

Each point is [x1, x2, label]. Strict types: true is not 1, "3" is not 3 and 1.5 is not a
label; NaN and infinities are refused. The count is checked against the deployment's limit
(not a fixed max_length), and every error names the point it is about.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictFloat, StrictInt, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from boundarylab.engine.limits import Limits

MAX_COORDINATE = 1e4
MAX_CUSTOM_CLASSES = 5
MIN_CUSTOM_POINTS = 4
Coordinate = Annotated[StrictFloat, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]
Label = Annotated[StrictInt, Field(ge=0, le=MAX_CUSTOM_CLASSES - 1)]
CustomPoint = tuple[Coordinate, Coordinate, Label]


def points_error(kind: str, message: str, loc: tuple[str | int, ...], value: Any) -> None:
    """Raise a validation error at ``loc``: a field validator's loc is relative to its field
    (pydantic prefixes it), a model validator's names the field."""
    error = PydanticCustomError(kind, message)
    raise ValidationError.from_exception_data(
        "DatasetConfig", [InitErrorDetails(type=error, loc=loc, input=value)]
    )


def check_points(points: list[tuple[float, float, int]], limits: Limits) -> None:
    """Refuse a set of points a run cannot take: more than ``limits.max_samples`` (the
    first point past it named), fewer than MIN_CUSTOM_POINTS, one class only, or labels
    that skip a class."""
    if len(points) > limits.max_samples:
        points_error(
            "too_long",
            f"At most {limits.max_samples} points, got {len(points)} (point "
            f"{limits.max_samples} is one too many)",
            (limits.max_samples,),
            points[limits.max_samples],
        )
    if len(points) < MIN_CUSTOM_POINTS:
        points_error(
            "too_short",
            f"At least {MIN_CUSTOM_POINTS} points, got {len(points)}",
            (),
            len(points),
        )
    labels = {label for _, _, label in points}
    if len(labels) < 2:
        points_error(
            "value_error",
            f"At least 2 classes are needed; every point has label {labels.pop()}",
            (),
            len(points),
        )
    missing = sorted(set(range(max(labels) + 1)) - labels)
    if missing:
        points_error(
            "value_error",
            f"Labels must be 0..K-1 with every class used: no point has label {missing[0]} "
            f"(the largest label is {max(labels)})",
            (),
            len(points),
        )
