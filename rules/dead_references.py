"""What a callback does when a row it points at was deleted under it (by SQL, outside the API): it drops
the dead reference, records that in its audit trail, and goes on. Pure: the workflow applies it to the
step whose write found the reference dead (workflows/callback.py, `_commit`).

A dead customer, service or preferred staff member just becomes "none". A dead assignee leaves the
callback unassigned (an assigned one pending again: the SLA clock escalates it to someone else). A dead
branch or company took the callback's row with it (ON DELETE CASCADE): there is nothing left to write to,
so the callback ends as cancelled without another write.
"""

from __future__ import annotations

from uuid import UUID

from models.callbacks import CallbackStatus, DeadReferences, Escalation
from rules.callback_machine import Step

ORPHANING = frozenset({"branch_id", "company_id"})
REFERENCE_DROPPED = "reference_dropped"


def orphaned(dead: DeadReferences) -> bool:
    """The callback's branch or company is gone: its row went with it."""
    return bool(ORPHANING & set(dead.fields))


def _without(escalation: Escalation, staff: set[UUID]) -> Escalation:
    return escalation.model_copy(
        update={
            "escalated_from": None if escalation.escalated_from in staff else escalation.escalated_from,
            "escalated_to": None if escalation.escalated_to in staff else escalation.escalated_to,
        }
    )


def drop_references(step: Step, dead: DeadReferences) -> None:
    """Drop the dead references from the step's state (and escalation) and record it as an event of the
    same step, so the retried write carries the whole story. For an orphaned callback see `end_orphaned`."""
    state = step.state
    staff = set(dead.staff)
    fields = set(dead.fields)
    request_changes: dict[str, object] = {}
    if "customer_id" in fields:
        request_changes["customer_id"] = None
    if "service_id" in fields:
        request_changes["service_id"] = None
    if state.request.preferred_staff_id is not None and state.request.preferred_staff_id in staff:
        request_changes["preferred_staff_id"] = None
    if request_changes:
        state.request = state.request.model_copy(update=request_changes)
    if state.assigned_to is not None and state.assigned_to in staff:
        state.assigned_to = None
        state.assigned_at = None
        if state.status == CallbackStatus.ASSIGNED:
            state.status = CallbackStatus.PENDING
    state.escalations = [_without(escalation, staff) for escalation in state.escalations]
    if step.escalation is not None:
        step.escalation = _without(step.escalation, staff)
    step.emit(
        REFERENCE_DROPPED,
        references=sorted(fields),
        staff_ids=sorted(str(staff_id) for staff_id in staff),
    )


def end_orphaned(step: Step, dead: DeadReferences) -> None:
    """The branch or company is gone: the callback ends as cancelled (kept in the workflow only)."""
    state = step.state
    gone = "company" if "company_id" in dead.fields else "branch"
    state.status = CallbackStatus.CANCELLED
    state.cancelled_at = step.now
    state.cancel_reason = f"the callback's {gone} was deleted"
    step.emit("cancelled", reason=state.cancel_reason)
