"""The base every config section is built on: unknown fields and loose numbers are errors.

A typo in a field name must not silently train the default, and a JSON ``true`` or ``"3"``
must not pass for a number (pydantic's lax mode would take both), so every section of
RunConfig (and every other request schema of the engine) derives from ``StrictModel``.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticKnownError


def number_type(annotation: Any) -> type | None:
    """int or float when a field (or each item of a list field) holds numbers, else None."""
    if annotation in (int, float):
        return annotation  # type: ignore[no-any-return]
    if get_origin(annotation) is tuple:
        return None  # a row of custom points: its strict item types check each number
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Annotated:
        args = args[:1]
    return next((kind for kind in map(number_type, args) if kind is not None), None)


class StrictModel(BaseModel):
    # Unknown fields are an error, not silently dropped: a typo must not train the default.
    # NaN/Infinity are refused for every float field.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_only(cls, value: Any, info: ValidationInfo) -> Any:
        # A number field takes numbers: `true` is not 1 and "3" is not 3 (pydantic's lax mode
        # would take both). 300.0 stays a valid integer and 1 a valid float.
        kind = number_type(cls.model_fields[str(info.field_name)].annotation)
        items = value if isinstance(value, list) else [value]
        if kind is not None and any(isinstance(v, bool | str | bytes) for v in items):
            raise PydanticKnownError("int_type" if kind is int else "float_type")
        return value
