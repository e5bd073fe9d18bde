"""JSON bodies carry the JSON types their schema names, not pydantic's lax look-alikes.

FastAPI validates a parsed JSON body in pydantic's lax Python mode, which turns `0` into `false`, `"7"`
and `7.0` into `7`, and `0.5` into a date-time — none of them what the OpenAPI document says the field is.
`json_types` refuses such values before validation. Forms and CSV rows (the console, the bulk import)
validate the same body models from text, and say so with `context=TEXT_INPUT`: they keep the lax parsing.
"""

from __future__ import annotations

import types
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, ValidationInfo

TEXT_INPUT = {"text_input": True}

# The Python types a JSON value may have for a field of each type (None is handled on its own).
_JSON_VALUES: dict[type, tuple[type, ...]] = {
    bool: (bool,),
    int: (int, float),  # JSON Schema's integer includes 1.0; pydantic refuses 1.5 itself
    float: (int, float),
    datetime: (str,),
    date: (str,),
    time: (str,),
    uuid.UUID: (str,),
    AwareDatetime: (str,),
}


def _scalar(annotation: Any) -> list[Any]:
    """The member types of a field's annotation: Annotated and unions unwrapped, None left out."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _scalar(arg)]
    return [] if annotation is type(None) else [annotation]


def _allowed(annotation: Any) -> tuple[type, ...] | None:
    """The JSON value types a field accepts, or None when pydantic's own checks are exact enough."""
    allowed: list[type] = []
    for member in _scalar(annotation):
        if isinstance(member, type) and issubclass(member, Enum):
            return None
        if member is Decimal or member not in _JSON_VALUES:
            return None
        allowed += _JSON_VALUES[member]
    return tuple(allowed) or None


class WrongJsonType:
    """Stands in for a value of the wrong JSON type, so the field's own validation refuses it (and the
    problem names the field, with pydantic's message for its type)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def json_types(model: type[BaseModel], data: Any, info: ValidationInfo) -> Any:
    """Refuse a JSON value of the wrong type for a scalar field (a `mode="before"` model validator)."""
    if not isinstance(data, dict) or (info.context or {}).get("text_input"):
        return data
    checked = dict(data)
    for name, field in model.model_fields.items():
        key = field.alias or name
        value = checked.get(key)
        allowed = _allowed(field.annotation) if value is not None else None
        if allowed is None:
            continue
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            checked[key] = WrongJsonType(value)
    return checked
