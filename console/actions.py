"""The staff actions as the console offers them: which buttons a callback shows, and how a posted form
becomes the engine's command.

Everything comes from the staff-action table (rules/staff_actions.py): a button per row allowed in the
callback's state, named by the row's verb; the form is read into the API's body model of that action
(api/action_bodies.py) and turned into the command by the same function the API uses, so a button the
console shows is one the engine accepts, a refusal reads the same as over the API, and a new row in the
table is a new button with no edit here.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from api import callback_service as service
from api import schemas
from api.action_bodies import body_for
from api.json_types import TEXT_INPUT
from console.context import Ctx, form_value
from models.callbacks import Assign as AssignCommand
from models.callbacks import CallbackStatus, Complete, StaffAction, StaffCommand
from rules.staff_actions import BY_VERB, STAFF_ACTIONS

# The console's action names (URL segments and translation keys) and the engine's actions behind them.
ACTIONS: dict[str, StaffAction] = {spec.verb: action for action, spec in STAFF_ACTIONS.items()}
# The actions the queue offers on several selected rows at once.
BULK_ACTIONS = ("assign", "complete")
# The hidden field with the nonce of one rendered action form (its idempotency key).
FORM_NONCE = "submission"
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def allowed_actions(row: Mapping[str, Any]) -> list[str]:
    """The actions the engine would accept in the row's state, none on a deleted row."""
    if row.get("deleted_at") is not None:
        return []
    status = CallbackStatus(row["status"])
    return [spec.verb for spec in STAFF_ACTIONS.values() if spec.allows(status)]


def command(ctx: Ctx, action: str, form: Mapping[str, list[str]]) -> StaffCommand:
    """The engine command for a posted action form; raises pydantic's ValidationError for a bad form.
    An empty optional field is left out (an empty `staff_id` means "me", not an invalid UUID); an empty
    required one is sent as "" so the message stays the body model's "must not be empty"."""
    spec = BY_VERB[action]
    model = body_for(spec.action)
    body = None
    if model is not None:
        given = {
            name: value
            for name, info in model.model_fields.items()
            if (value := form_value(form, name)) or info.is_required()
        }
        body = model.model_validate(given, context=TEXT_INPUT)
    return service.command_for(spec.action, ctx.principal, body)


def idempotency_key(form: Mapping[str, list[str]]) -> str | None:
    """The key of one form submission: the page puts a fresh nonce in every action form it renders, so
    the same form sent twice (a double click, a reload that re-posts) is applied once."""
    key = form_value(form, FORM_NONCE)
    return key if IDEMPOTENCY_KEY.fullmatch(key) else None


async def act(ctx: Ctx, callback_id: uuid.UUID, action: str, form: Mapping[str, list[str]]) -> None:
    """Run one action; the engine's refusal comes back as the API's `ApiProblem`."""
    await service.act(
        ctx.deps,
        ctx.principal,
        callback_id,
        ACTIONS[action],
        command(ctx, action, form),
        idempotency_key(form),
    )


async def bulk(ctx: Ctx, action: str, ids: list[uuid.UUID], form: Mapping[str, list[str]]) -> dict[str, Any]:
    """Run a bulk action (one of `BULK_ACTIONS`) on every id: one result per id, as the API answers.
    Raises ValueError for a malformed staff id, ValidationError for a bad form, ApiProblem when refused."""
    actor = ctx.principal.actor
    if action == "assign":
        staff = form_value(form, "staff_id")
        staff_id = service.staff_for(ctx.principal, uuid.UUID(staff) if staff else None)
        return await service.bulk(
            ctx.deps,
            ctx.principal,
            ids,
            StaffAction.ASSIGN,
            lambda: AssignCommand(staff_id=staff_id, actor=actor),
        )
    body = schemas.BulkCompleteBody(ids=ids, notes=form_value(form, "notes"))
    return await service.bulk(
        ctx.deps,
        ctx.principal,
        body.ids,
        StaffAction.COMPLETE,
        lambda: Complete(notes=body.notes, actor=actor),
    )
