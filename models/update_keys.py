"""The Update id of a staff action sent with an Idempotency-Key: `<action>.<key digest>.<request digest>`.

The key's digest makes a retry the same Update (Temporal answers a repeated Update id with the stored
outcome and applies nothing twice). The request's digest (the action and every argument) tells a retry
from a different request under a reused key: that one gets another Update id, and the workflow, which
remembers which request each key of its Updates carried (workflows/update_keys.py), refuses it instead of
applying it, and instead of Temporal silently answering the first request's outcome.

Free of I/O imports: the workflow sandbox loads this module. Ids of any other form (Update ids from before
this scheme, `<action>-<uuid>`, or random ones) carry no key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

KEY_REUSED = "IdempotencyKeyReused"
KEY_REUSED_MESSAGE = (
    "this Idempotency-Key was already used for a different request (another action or other arguments); "
    "a new request needs a new key"
)
_DIGEST = 32
_KEYED = re.compile(rf"^[a-z_]+\.(?P<key>[0-9a-f]{{{_DIGEST}}})\.(?P<request>[0-9a-f]{{{_DIGEST}}})$")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST]


def key_digest(idempotency_key: str) -> str:
    return _digest(idempotency_key)


def request_digest(action: str, command: BaseModel) -> str:
    """The same action with the same arguments, the same digest (JSON with sorted keys)."""
    arguments: dict[str, Any] = command.model_dump(mode="json")
    return _digest(json.dumps({"action": action, "arguments": arguments}, sort_keys=True))


def keyed_update_id(action: str, idempotency_key: str, command: BaseModel) -> str:
    return f"{action}.{key_digest(idempotency_key)}.{request_digest(action, command)}"


@dataclass(frozen=True)
class KeyedUpdate:
    key: str
    request: str


def keyed_update(update_id: str | None) -> KeyedUpdate | None:
    """The key and request digests of a keyed Update id (None for any other id)."""
    found = _KEYED.match(update_id or "")
    return KeyedUpdate(found["key"], found["request"]) if found else None
