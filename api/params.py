"""Parameter types whose OpenAPI schema is exactly what they accept.

- `Rfc3339`: a date-time as RFC 3339 has it (`format: date-time`): date, `T`, time and an offset. Pydantic's
  lax parsing would also take `0.5` (a Unix time) or a date without a time; the schema does not, so neither
  does the API.
- `QueryBool`: `true` or `false`, nothing else.
- `EntityId`: the id of a scope's entity (`/v1/policies/{scope}/{scope_id}/…`): a positive integer for a
  company, branch or service, a UUID for a staff member. Both forms are valid ids; an id of the other
  form than its scope names no entity of that scope, which is a 404 like any unknown id (`entity_id`).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from api.problems import not_found
from models.policies import Level

# The largest id the API takes: JavaScript's largest safe integer, so every client reads ids exactly (and
# every schema validator compares bounds exactly).
MAX_ID = 2**53 - 1
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_INTEGER = re.compile(r"[1-9][0-9]{0,18}")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise ValueError("is not an RFC 3339 date-time with an offset, e.g. 2030-03-04T09:00:00+01:00")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]


# A local wall-clock time, HH:MM (seconds are allowed), never with an offset: the schema's `format: time`
# would demand one (RFC 3339), so the pattern says what is meant.
LOCAL_TIME_PATTERN = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?$"
LOCAL_TIME_SCHEMA = {"type": "string", "pattern": LOCAL_TIME_PATTERN, "description": "local wall-clock time"}
LocalTimeOut = Annotated[time, WithJsonSchema(LOCAL_TIME_SCHEMA)]


def _query_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("is true or false")


# A boolean query parameter: `true` or `false`, as the schema's boolean is written in a query (pydantic's
# lax booleans would also take 1, yes, on, t …, which the schema does not).
QueryBool = Annotated[bool, BeforeValidator(_query_bool)]


def _entity_id(value: str) -> str:
    if _UUID.fullmatch(value):
        return str(uuid.UUID(value))
    if _INTEGER.fullmatch(value) and int(value) <= MAX_ID:
        return value
    raise ValueError("is a positive integer (company, branch, service) or a UUID (staff member)")


EntityId = Annotated[
    str,
    AfterValidator(_entity_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                {"type": "string", "format": "uuid"},
            ],
            "description": "a positive integer (company, branch, service) or a UUID (staff member)",
        }
    ),
]


def entity_id(level: Level, value: str) -> str:
    """The id as stored for `level`; an id of the other form names nothing there: 404."""
    if (level is Level.STAFF) != bool(_UUID.fullmatch(value)):
        raise not_found(level.value, value)
    return value
