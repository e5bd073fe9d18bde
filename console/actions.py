"""The staff actions as the console offers them: which buttons a callback shows, and how a posted form
becomes the engine's command. The one place to change when an action is added, renamed or dropped.

Forms are validated by the API's own body models (`api/schemas.py`), and the rules of which action is
allowed in which state are the engine's (`rules/transitions.py`), so a button the console shows is one the
engine accepts, and a refusal reads the same as over the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from api import callback_service as service
from api import schemas
from console.context import Ctx, form_value
from models.callbacks import Assign as AssignCommand
from models.callbacks import (
    CallbackStatus,
    Cancel,
    ChangePriority,
    Complete,
    Escalate,
    MarkContacted,
    RecordAttempt,
    StaffAction,
)
from rules.transitions import ALLOWED_FROM
from starter.client import StaffCommand

# The console's action names (URL segments and translation keys) and the engine's actions behind them.
ACTIONS: dict[str, StaffAction] = {
    "assign": StaffAction.ASSIGN,
    "contacted": StaffAction.MARK_CONTACTED,
    "attempt": StaffAction.RECORD_ATTEMPT,
    "complete": StaffAction.COMPLETE,
    "escalate": StaffAction.ESCALATE,
    "priority": StaffAction.CHANGE_PRIORITY,
    "cancel": StaffAction.CANCEL,
}
# The actions the queue offers on several selected rows at once.
BULK_ACTIONS = ("assign", "complete")


def allowed_actions(row: Mapping[str, Any]) -> list[str]:
    """The actions the engine would accept in the row's state (rules.transitions), none on a deleted row."""
    if row.get("deleted_at") is not None:
        return []
    status = CallbackStatus(row["status"])
    return [name for name, action in ACTIONS.items() if status in ALLOWED_FROM[action]]


def command(ctx: Ctx, action: str, form: Mapping[str, list[str]]) -> StaffCommand:
    """The engine command for a posted action form; raises pydantic's ValidationError for a bad form."""
    actor = ctx.principal.actor
    if action == "assign":
        staff = form_value(form, "staff_id") or None
        body = schemas.AssignBody(staff_id=staff)
        return AssignCommand(staff_id=service.staff_for(ctx.principal, body.staff_id), actor=actor)
    if action == "contacted":
        return MarkContacted(actor=actor)
    if action == "attempt":
        attempt = schemas.AttemptBody(
            outcome=form_value(form, "outcome"), notes=form_value(form, "notes") or None
        )
        return RecordAttempt(outcome=attempt.outcome, notes=attempt.notes or None, actor=actor)
    if action == "complete":
        done = schemas.CompleteBody(notes=form_value(form, "notes"))
        return Complete(notes=done.notes, actor=actor)
    if action == "escalate":
        raised = schemas.EscalateBody(
            reason=form_value(form, "reason"), details=form_value(form, "details") or None
        )
        return Escalate(reason=raised.reason, details=raised.details or None, actor=actor)
    if action == "cancel":
        cancelled = schemas.CancelBody(reason=form_value(form, "reason") or None)
        return Cancel(reason=cancelled.reason or None, actor=actor)
    priority = schemas.PriorityBody(priority=form_value(form, "priority"))
    return ChangePriority(priority=priority.priority, actor=actor)


async def act(ctx: Ctx, callback_id: uuid.UUID, action: str, form: Mapping[str, list[str]]) -> None:
    """Run one action; the engine's refusal comes back as the API's `ApiProblem`."""
    await service.act(ctx.deps, ctx.principal, callback_id, ACTIONS[action], command(ctx, action, form))


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
