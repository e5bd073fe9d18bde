"""The HTTP body of each staff action: what `POST /v1/callbacks/{id}/{path}` accepts (and the CLI offers).

The original seven actions keep the bodies written out in api/schemas.py: they are the published OpenAPI
schemas, they apply the stricter text rules (single-line reasons, notes that must not be blank), and
`AssignBody` lets a staff key leave `staff_id` out. Any other action's body is derived from its command
model (every field but `actor`, with the control-character check on all text), so a row in
rules/staff_actions.py is all the API, the CLI and the console need for a new action.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, create_model, field_validator

from api import schemas, text
from models.callbacks import StaffAction
from rules.staff_actions import STAFF_ACTIONS

WRITTEN: Mapping[StaffAction, type[schemas.Body] | None] = {
    StaffAction.ASSIGN: schemas.AssignBody,
    StaffAction.MARK_CONTACTED: None,
    StaffAction.RECORD_ATTEMPT: schemas.AttemptBody,
    StaffAction.COMPLETE: schemas.CompleteBody,
    StaffAction.CANCEL: schemas.CancelBody,
    StaffAction.ESCALATE: schemas.EscalateBody,
    StaffAction.CHANGE_PRIORITY: schemas.PriorityBody,
}


class DerivedBody(schemas.Body):
    @field_validator("*")
    @classmethod
    def _clean_text(cls, value: Any) -> Any:
        # `type(...) is str`: a StrEnum member is a str too, and must stay the member.
        return text.multi_line(value) if type(value) is str else value


@cache
def body_for(action: StaffAction) -> type[schemas.Body] | None:
    """The body model of an action; None when the action takes no input at all."""
    if action in WRITTEN:
        return WRITTEN[action]
    command = STAFF_ACTIONS[action].command
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in command.model_fields.items() if name != "actor"
    }
    if not fields:
        return None
    derived: type[schemas.Body] = create_model(f"{command.__name__}Body", __base__=DerivedBody, **fields)
    return derived


def body_optional(body: type[BaseModel]) -> bool:
    """A body whose every field has a default may be left out of the request entirely (assign, cancel)."""
    return not any(field.is_required() for field in body.model_fields.values())
