"""The steps that depend on who is on shift (DESIGN §8): auto-assignment, breach escalation and the
handover when an assignee's absence begins.

Only staff on shift at that moment are picked (the candidates carry their shift, rules/shifts.py). When
nobody who could take the callback is on shift, the step records when the first of them will be and the
workflow wakes then (`assign_at`, `escalation_waits_until`; rules/sla.py turns them into deadlines): the
callback waits, pending or with its assignee. They work on a step of rules/callback_machine.py, seen
through `StepLike` so that this module needs nothing from the machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from models.callbacks import CallbackState, EscalationReason, StaffCandidate
from rules.assignment import choose_assignee, choose_escalation_target, next_shift_start


class StepLike(Protocol):
    state: CallbackState
    now: datetime

    def emit(self, event_type: str, **payload: Any) -> None: ...

    def pick(self, staff_id: UUID, staff: Sequence[StaffCandidate] = ()) -> None: ...

    def escalate(
        self, reason: EscalationReason, details: str | None, staff: Sequence[StaffCandidate]
    ) -> None: ...


def wait_for_staff(step: StepLike, until: datetime | None, reason: str) -> None:
    """Nobody who could take the callback is on shift: choose again when the first of them is (no wait
    when nobody ever will: the callback stays as it is, as it did before shifts)."""
    if until is None:
        return
    if reason == "escalation":
        step.state.escalation_waits_until = until
    else:
        step.state.assign_at = until
    step.emit("waiting_for_staff", reason=reason, until=until.isoformat())


def choose_or_wait(step: StepLike, staff: Sequence[StaffCandidate], *, reason: str) -> None:
    """Auto-assignment among the staff on shift, or a wait for the first of them to come on shift."""
    state, request = step.state, step.state.request
    chosen = choose_assignee(staff, branch_id=request.branch_id, preferred=request.preferred_staff_id)
    if chosen is not None and chosen == state.assigned_to:  # back on shift before anyone else: keeps it
        state.assignee_away_at = next((c.away_from for c in staff if c.id == chosen), None)
    elif chosen is not None:
        step.pick(chosen, staff)
    else:
        later = next_shift_start(
            staff,
            branch_id=request.branch_id,
            after=step.now,
            preferred=request.preferred_staff_id,
            exclude={state.assigned_to},
        )
        wait_for_staff(step, later, reason)


def breach(step: StepLike, staff: Sequence[StaffCandidate]) -> None:
    """Escalate a breach to someone else on shift; when nobody else is on shift but someone will be,
    the escalation waits for them (a breach at 01:00 goes to the first colleague in the morning)."""
    state = step.state
    target = choose_escalation_target(
        staff, branch_id=state.request.branch_id, current=state.assigned_to, earlier=state.previous_assignees
    )
    later = None
    if target is None:
        later = next_shift_start(
            staff, branch_id=state.request.branch_id, after=step.now, exclude={state.assigned_to}
        )
    if later is None:
        step.escalate(EscalationReason.SLA_BREACH, None, staff)
    else:
        wait_for_staff(step, later, "escalation")


def hand_over(step: StepLike, staff: Sequence[StaffCandidate]) -> None:
    """The assignee's absence begins: the callback goes to someone on shift (or waits for them). An
    absence withdrawn or moved in the meantime only moves the next handover."""
    state = step.state
    assignee = next((c for c in staff if c.id == state.assigned_to), None)
    if assignee is not None and not assignee.absent:
        state.assignee_away_at = assignee.away_from
        return
    state.assignee_away_at = None
    step.emit("handed_over", staff_id=str(state.assigned_to), reason="absence")
    choose_or_wait(step, [c for c in staff if c.id != state.assigned_to], reason="handover")
