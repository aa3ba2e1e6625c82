"""RunConfig's ``dataset`` section: which points a run learns from.

The generated shapes (datasets.py draws them) or a person's own points (points.py checks
them); the deployment's point limit arrives as validation context (limits.py).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from boundarylab.engine.limits import (
    LIMITS_CONTEXT_KEY,
    MAX_SAMPLES,
    Limits,
    within_deployment_limit,
)
from boundarylab.engine.points import (
    MAX_COORDINATE,
    MAX_CUSTOM_CLASSES,
    MIN_CUSTOM_POINTS,
    CustomPoint,
    check_points,
    points_error,
)
from boundarylab.engine.strict_model import StrictModel

GeneratedKind = Literal["moons", "circles", "xor", "gaussian", "spiral", "blobs"]
# "custom": the person's own points, given in dataset.points (clicked, uploaded or pasted).
DatasetKind = Literal[GeneratedKind, "custom"]
GENERATED_KINDS: list[str] = list(get_args(GeneratedKind))

# A data set's own defaults where the general one would hide its shape: at noise 0.2 the
# spiral's arms (0.29 apart) blur into one cloud. Applied when the field is not given; the
# page reads them from the schema ("x-kind-defaults") when a person picks another kind.
KIND_DEFAULTS: dict[str, dict[str, float]] = {"spiral": {"noise": 0.05}}


_APPLIES_TO_GENERATED = {"x-applies-when": {"kind": GENERATED_KINDS}}


class DatasetConfig(StrictModel):
    """Which points to learn from."""

    model_config = ConfigDict(json_schema_extra={"x-kind-defaults": KIND_DEFAULTS})

    kind: DatasetKind = Field(
        "moons",
        description="Shape of the data: two interleaving half-moons (the article), two "
        "concentric circles, XOR quadrants, two gaussian blobs, a two-arm spiral, or 2–5 blobs.",
    )
    n_samples: int = Field(
        300,
        ge=2,
        le=MAX_SAMPLES,
        description="Number of points, train and test together (not used by 'custom' data: "
        "its points are given).",
        json_schema_extra=_APPLIES_TO_GENERATED,
    )
    noise: float = Field(
        0.2,
        ge=0.0,
        le=2.0,
        description="Standard deviation of the gaussian noise on each point (not used by "
        "'custom' data).",
        json_schema_extra=_APPLIES_TO_GENERATED,
    )
    seed: int = Field(
        0, ge=0, le=2**32 - 1, description="Random seed of the data: same seed, same points."
    )
    test_fraction: float = Field(
        0.0,
        ge=0.0,
        le=0.9,
        description="Share of the points held out as a test set (0 = train on all, as the "
        "article does).",
    )
    n_classes: int = Field(
        3,
        ge=2,
        le=5,
        description="Number of classes (only used by the 'blobs' dataset).",
        # The page hides a field whose "x-applies-when" does not match the other fields.
        json_schema_extra={"x-applies-when": {"kind": ["blobs"]}},
    )
    points: list[CustomPoint] | None = Field(
        None,
        description="The points of a 'custom' data set, each [x1, x2, label]: coordinates "
        f"finite with |x| ≤ {MAX_COORDINATE:g}, labels integers 0..K-1 (K from 2 to "
        f"{MAX_CUSTOM_CLASSES}, each class at least one point), {MIN_CUSTOM_POINTS} to "
        f"{MAX_SAMPLES} points. Only with kind 'custom', which requires it. The test split is "
        "drawn with the seed, as for generated data.",
        json_schema_extra={"x-applies-when": {"kind": ["custom"]}, "maxItems": MAX_SAMPLES},
    )

    @property
    def size(self) -> int:
        """Points in the data set, train and test together."""
        return len(self.points) if self.points is not None else self.n_samples

    @property
    def class_count(self) -> int:
        """Classes K: 2 for most shapes, n_classes for blobs, 1 + the largest label for
        custom points."""
        if self.points is not None:
            return 1 + max(label for _, _, label in self.points)
        return self.n_classes if self.kind == "blobs" else 2

    @field_validator("points")
    @classmethod
    def _points_within_limit(
        cls, points: list[tuple[float, float, int]] | None, info: ValidationInfo
    ) -> list[tuple[float, float, int]] | None:
        # Checked here rather than by max_length so that a deployment's lower limit applies.
        if points is not None:
            context = info.context if isinstance(info.context, dict) else {}
            check_points(points, context.get(LIMITS_CONTEXT_KEY) or Limits())
        return points

    @model_validator(mode="after")
    def _points_with_custom_only(self) -> DatasetConfig:
        if self.kind == "custom" and self.points is None:
            points_error("missing", "A 'custom' data set needs its points", ("points",), None)
        if self.kind != "custom" and self.points is not None:
            points_error(
                "extra_forbidden",
                f"points are only for kind 'custom', not {self.kind!r}",
                ("points",),
                None,
            )
        return self

    @field_validator("n_samples")
    @classmethod
    def _deployment_limit(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("kind") == "custom":
            return value  # not used: custom data has its points (limited above)
        return within_deployment_limit(value, info, "DatasetConfig")

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: object) -> object:
        if isinstance(data, dict):
            defaults = KIND_DEFAULTS.get(str(data.get("kind", "moons")), {})
            missing = {k: v for k, v in defaults.items() if k not in data}
            if missing:
                return {**data, **missing}
        return data
