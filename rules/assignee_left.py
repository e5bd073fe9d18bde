"""The assignee left (their staff record was deactivated): who takes the callback over.

Pure, like the rest of the state machine (rules/callback_machine.py), whose `Step` it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from models.callbacks import CallbackState, CallbackStatus, StaffCandidate
from rules.assignment import choose_assignee
from rules.callback_machine import StaffNeeded, Step


def assignee_left_applies(state: CallbackState, staff_id: UUID) -> bool:
    """Whether `staff_id` leaving concerns this callback: it is still open and it is theirs."""
    return not state.status.is_terminal and state.assigned_to == staff_id


def staff_for_assignee_left(state: CallbackState, staff_id: UUID) -> StaffNeeded | None:
    return StaffNeeded() if assignee_left_applies(state, staff_id) else None


def assignee_left(
    state: CallbackState,
    staff_id: UUID,
    now: datetime,
    staff: Sequence[StaffCandidate],
    *,
    actor: str = "system",
) -> Step | None:
    """The assignee was deactivated: the callback goes to whoever the assignment rules pick among the
    others (preferred staff, then staff linked to the service, then the least loaded of the branch).
    When nobody else can take it, it waits unassigned: an assigned callback is pending again, a contacted
    one keeps its progress. None when the callback is not (or no longer) theirs: nothing to do."""
    if not assignee_left_applies(state, staff_id):
        return None
    others = [candidate for candidate in staff if candidate.id != staff_id]
    target = choose_assignee(
        others, branch_id=state.request.branch_id, preferred=state.request.preferred_staff_id
    )
    step = Step(state, actor=actor, now=now)
    step.emit(
        "reassigned",
        reason="staff_deactivated",
        previous_staff_id=str(staff_id),
        staff_id=str(target) if target is not None else None,
    )
    if target is not None:
        step.pick(target)
    else:
        step.state.previous_assignees.append(staff_id)
        step.state.assigned_to = None
        step.state.assigned_at = None
        if step.state.status == CallbackStatus.ASSIGNED:
            step.state.status = CallbackStatus.PENDING
    return step
