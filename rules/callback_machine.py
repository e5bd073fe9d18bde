"""The callback state machine: how each step changes a callback, as pure functions of state and input.

The workflow (workflows/callback.py) decides *when* a step happens and does the I/O around it: it loads
the staff a step needs, then asks this module for the step, then persists it. Keeping the step itself here
means every transition can be tested without Temporal, and replaying a workflow recomputes exactly the
same state from the same inputs (no clock, no randomness: `now` and the staff are passed in).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from models.calcom import FindSlots, FoundSlots
from models.callbacks import (
    Assign,
    CallbackEvent,
    CallbackState,
    CallbackStatus,
    Cancel,
    ChangePriority,
    Complete,
    ContactAttempt,
    Escalate,
    Escalation,
    EscalationReason,
    MarkContacted,
    NewCallback,
    PreparedCallback,
    Priority,
    RecordAttempt,
    SlaClock,
    StaffCandidate,
    StaffCommand,
)
from rules import staffing
from rules.assignment import choose_escalation_target, should_auto_assign
from rules.dial_window import callable_status, deadline_after_dial_window, parse_preferred
from rules.sla import Deadline, DueKind, sla_deadline


class StaffRefused(ValueError):
    """The chosen staff member cannot take the callback (the API answers 422 on `staff_id`)."""


class AlreadyTaken(ValueError):
    """ "Take it" (`Assign.if_unassigned`) on a callback someone else holds (the API answers 409)."""


@dataclass(frozen=True)
class StaffNeeded:
    """A step needs the company's staff candidates loaded first; `include` are looked up even when they
    would not be candidates (so an inactive or foreign staff member is refused by name, not missed)."""

    include: tuple[UUID, ...] = ()


class Step:
    """The transition in progress: a copy of the state being changed and the events it produces.

    A step works on a copy, so a refusal half-way (e.g. `StaffRefused`) leaves the current state as it
    was; the caller makes the copy current only once it is persisted. The copy is shallow except for the
    lists a step appends to: the rules replace nested models (request, settings, calendar, ...) rather
    than change them, so old and new state share them. (A deep copy per step was most of a step's
    allocations, and every cached callback kept a second copy of its request.)
    """

    def __init__(self, state: CallbackState, actor: str, now: datetime) -> None:
        self.state = state.model_copy(
            update={
                "previous_assignees": list(state.previous_assignees),
                "attempts": list(state.attempts),
                "escalations": list(state.escalations),
                "warnings_sent": list(state.warnings_sent),
            }
        )
        self.state.version += 1
        self.actor = actor
        self.now = now
        self.events: list[CallbackEvent] = []
        self.escalation: Escalation | None = None
        if state.dial_window is not None:
            self.state.callable_now, self.state.next_callable_at = callable_status(state.dial_window, now)
        # The staff member the rules picked, whose capacity the write must claim (see `Transition.claim`).
        self.claim: UUID | None = None

    def emit(self, event_type: str, **payload: Any) -> None:
        self.state.event_count += 1
        self.events.append(
            CallbackEvent(
                seq=self.state.event_count,
                type=f"callback.{event_type}",
                payload=payload,
                actor=self.actor,
                at=self.now,
            )
        )

    def emit_deadline_moved(self, sla_deadline: datetime) -> None:
        """Audit why `expires_at` is not the SLA's own deadline, so the SLA report stays honest."""
        self.emit(
            "deadline_moved",
            reason="dial_window",
            sla_deadline=sla_deadline.isoformat(),
            expires_at=self.state.expires_at.isoformat(),
            next_callable_at=self.state.next_callable_at.isoformat() if self.state.next_callable_at else None,
        )

    def assign_to(self, staff_id: UUID, staff: Sequence[StaffCandidate] = ()) -> None:
        """Hand the callback to `staff_id`; the workflow wakes when their next absence (from `staff`)
        begins, and any wait for staff on shift is over."""
        state = self.state
        if state.assigned_to is not None and state.assigned_to != staff_id:
            state.previous_assignees.append(state.assigned_to)
        previous = state.assigned_to
        state.assigned_to = staff_id
        state.assigned_at = self.now
        state.status = status_after_assignment(state.status)
        state.assign_at = None
        state.assignee_away_at = next((c.away_from for c in staff if c.id == staff_id), None)
        self.emit("assigned", staff_id=str(staff_id), previous_staff_id=str(previous) if previous else None)

    def pick(self, staff_id: UUID, staff: Sequence[StaffCandidate] = ()) -> None:
        """Hand the callback to whom the rules picked (assignment, escalation, handover): the write claims
        a place within their `max_open_callbacks` (`claim`), as a staff member's own assign does not."""
        self.assign_to(staff_id, staff)
        self.claim = staff_id

    def escalate(
        self, reason: EscalationReason, details: str | None, staff: Sequence[StaffCandidate]
    ) -> None:
        """Record an escalation and hand the callback to someone else when anyone else can take it."""
        state = self.state
        target = choose_escalation_target(
            staff,
            branch_id=state.request.branch_id,
            current=state.assigned_to,
            earlier=state.previous_assignees,
        )
        escalation = Escalation(
            number=state.escalation_count + 1,
            reason=reason,
            details=details,
            escalated_from=state.assigned_to,
            escalated_to=target,
            at=self.now,
        )
        state.escalations.append(escalation)
        state.escalation_waits_until = None
        self.escalation = escalation
        self.emit(
            "escalated",
            number=escalation.number,
            reason=reason.value,
            details=details,
            escalated_from=str(escalation.escalated_from) if escalation.escalated_from else None,
            escalated_to=str(target) if target else None,
        )
        if target is not None:
            self.pick(target, staff)


def status_after_assignment(status: CallbackStatus) -> CallbackStatus:
    """A pending callback becomes assigned; an assigned or contacted one keeps its progress."""
    return CallbackStatus.ASSIGNED if status == CallbackStatus.PENDING else status


# --- the steps the engine takes on its own --------------------------------------------------------


def open_callback(
    callback_id: UUID,
    request: NewCallback,
    prepared: PreparedCallback,
    now: datetime,
    full: Collection[UUID] = (),
) -> Step:
    """The first step: the SLA deadline, and an assignee where the rules auto-assign (or, with nobody on
    shift, the moment to choose one). `full`: staff whose capacity turned out taken when the step was
    written (concurrent creations): pick among the others; the one picked is claimed by the write."""
    blank = CallbackState(
        id=callback_id,
        request=request,
        settings=prepared.settings,
        priority=request.priority,
        created_at=now,
        expires_at=now,
        calendar=prepared.calendar,
        dial_window=prepared.dial_window,
        version=0,
    )
    step = Step(blank, actor="system", now=now)
    moved_from = set_deadline(step.state, request.priority)
    step.emit("created", priority=request.priority.value, expires_at=step.state.expires_at.isoformat())
    if moved_from is not None:
        step.emit_deadline_moved(moved_from)
    if should_auto_assign(request.priority, prepared.settings.auto_assign):
        candidates = [c for c in prepared.candidates if c.id not in full]
        staffing.choose_or_wait(step, candidates, reason="assignment")
    return step


def set_deadline(state: CallbackState, priority: Priority) -> datetime | None:
    """`expires_at` from `created_at` on the callback's clock. A business-hours SLA whose deadline comes
    before the customer may first be called moves to the end of that first window: returns the deadline
    it moved from (None when it did not move)."""
    deadline = sla_deadline(state.created_at, priority, state.settings, state.calendar)
    state.expires_at = deadline
    if state.settings.sla_clock == SlaClock.BUSINESS_HOURS:
        state.expires_at = deadline_after_dial_window(state.dial_window, state.created_at, deadline)
    return deadline if state.expires_at != deadline else None


def staff_for_deadline(deadline: Deadline, state: CallbackState | None = None) -> StaffNeeded | None:
    if deadline.kind is DueKind.HANDOVER and state is not None and state.assigned_to is not None:
        return StaffNeeded(include=(state.assigned_to,))
    if deadline.kind in (DueKind.ESCALATION, DueKind.ASSIGNMENT, DueKind.HANDOVER):
        return StaffNeeded()
    return None


def on_deadline(
    state: CallbackState, deadline: Deadline, now: datetime, staff: Sequence[StaffCandidate]
) -> Step:
    """What the SLA clock does when a deadline of rules/sla.py comes: warn, escalate or expire."""
    step = Step(state, actor="sla-clock", now=now)
    if deadline.kind is DueKind.WARNING:
        assert deadline.warning_percent is not None
        step.state.warnings_sent.append(deadline.warning_percent)
        step.emit(
            "sla_warning",
            percent=deadline.warning_percent,
            expires_at=step.state.expires_at.isoformat(),
            assigned_to=str(step.state.assigned_to) if step.state.assigned_to else None,
        )
    elif deadline.kind is DueKind.ESCALATION:
        staffing.breach(step, staff)
    elif deadline.kind is DueKind.ASSIGNMENT:
        step.state.assign_at = None
        staffing.choose_or_wait(step, staff, reason="handover" if step.state.assigned_to else "assignment")
    elif deadline.kind is DueKind.HANDOVER:
        staffing.hand_over(step, staff)
    else:
        step.state.status = CallbackStatus.EXPIRED
        step.state.expired_at = step.now
        step.emit("expired", escalations=step.state.escalation_count)
    return step


def preferred_window(window: dict[str, Any] | None, *, after: datetime) -> tuple[datetime, datetime] | None:
    """The customer's preferred time window as aware datetimes, clipped to the future; None when absent,
    malformed or already over (then the next free slots are suggested instead)."""
    parsed = parse_preferred(window)
    if parsed is None:
        return None
    start, end = max(parsed[0], after), parsed[1]
    return (start, end) if end > start else None


def slot_search(request: NewCallback, now: datetime) -> FindSlots:
    """Free slots of the requested service: inside the customer's preferred window when one is given and
    searchable, otherwise the next free ones."""
    assert request.service_id is not None
    search = FindSlots(service_id=request.service_id, company_id=request.company_id, after=now)
    window = preferred_window(request.preferred_time_window, after=now)
    if window is not None:
        try:
            return FindSlots.model_validate(
                {**search.model_dump(), "window_start": window[0], "window_end": window[1]}
            )
        except ValueError:  # e.g. a window too long: then the next free slots
            return search
    return search


def slots_suggested(state: CallbackState, found: FoundSlots, now: datetime) -> Step:
    step = Step(state, actor="slot-finder", now=now)
    step.state.suggested_slots = found.slots
    step.emit(
        "slots_suggested",
        count=len(found.slots),
        first=found.slots[0].start.isoformat() if found.slots else None,
        note=found.note,
    )
    return step


# --- the staff actions (their table is rules/staff_actions.py) ------------------------------------


def no_staff(state: CallbackState, command: StaffCommand) -> StaffNeeded | None:
    return None


def staff_to_assign(state: CallbackState, command: Assign) -> StaffNeeded | None:
    return StaffNeeded(include=(command.staff_id,))


def staff_to_escalate(state: CallbackState, command: StaffCommand) -> StaffNeeded | None:
    return StaffNeeded()


def staff_for_attempt(state: CallbackState, command: RecordAttempt) -> StaffNeeded | None:
    return StaffNeeded() if attempts_exhausted(state.contact_attempts + 1, state) else None


def attempts_exhausted(attempt_number: int, state: CallbackState) -> bool:
    """Every `max_contact_attempts`-th failed attempt escalates (the 3rd, the 6th, ... by default)."""
    return attempt_number % state.settings.max_contact_attempts == 0


def no_guard(state: CallbackState, command: StaffCommand) -> None:
    return None


def assign_guard(state: CallbackState, command: Assign) -> None:
    """ "Take it" is refused once someone else holds the callback (taking one's own again is fine)."""
    if command.if_unassigned and state.assigned_to not in (None, command.staff_id):
        raise AlreadyTaken(f"cannot take the callback: it is already assigned to {state.assigned_to}")


def assign(step: Step, command: Assign, staff: Sequence[StaffCandidate]) -> None:
    candidate = next((c for c in staff if c.id == command.staff_id), None)
    if candidate is None or not candidate.active:
        raise StaffRefused(
            f"staff {command.staff_id} is not an active staff member of company "
            f"{step.state.request.company_id}"
        )
    step.assign_to(command.staff_id, staff)


def mark_contacted(step: Step, command: MarkContacted, staff: Sequence[StaffCandidate]) -> None:
    step.state.status = CallbackStatus.CONTACTED
    step.state.contacted_at = step.now
    step.emit("contacted", staff_id=str(step.state.assigned_to))


def record_attempt(step: Step, command: RecordAttempt, staff: Sequence[StaffCandidate]) -> None:
    state = step.state
    attempt = ContactAttempt(
        number=state.contact_attempts + 1,
        outcome=command.outcome,
        notes=command.notes,
        staff_id=state.assigned_to,
        at=step.now,
    )
    state.attempts.append(attempt)
    step.emit("attempt_failed", number=attempt.number, outcome=attempt.outcome.value, notes=command.notes)
    if attempts_exhausted(attempt.number, state):
        step.escalate(
            EscalationReason.MULTIPLE_ATTEMPTS_FAILED, f"{attempt.number} failed contact attempts", staff
        )


def complete(step: Step, command: Complete, staff: Sequence[StaffCandidate]) -> None:
    step.state.status = CallbackStatus.COMPLETED
    step.state.completed_at = step.now
    step.state.completion_notes = command.notes
    step.emit("completed", notes=command.notes, on_time=step.now <= step.state.expires_at)


def cancel(step: Step, command: Cancel, staff: Sequence[StaffCandidate]) -> None:
    step.state.status = CallbackStatus.CANCELLED
    step.state.cancelled_at = step.now
    step.state.cancel_reason = command.reason
    step.emit("cancelled", reason=command.reason)


def escalate(step: Step, command: Escalate, staff: Sequence[StaffCandidate]) -> None:
    details = command.reason if not command.details else f"{command.reason}: {command.details}"
    step.escalate(EscalationReason.MANUAL, details, staff)


def change_priority(step: Step, command: ChangePriority, staff: Sequence[StaffCandidate]) -> None:
    """The SLA deadline is recomputed from the creation time (retroactive, as ServiceNow does)."""
    state = step.state
    previous = state.priority
    state.priority = command.priority
    moved_from = set_deadline(state, command.priority)
    step.emit(
        "priority_changed",
        previous=previous.value,
        priority=command.priority.value,
        expires_at=state.expires_at.isoformat(),
    )
    if moved_from is not None:
        step.emit_deadline_moved(moved_from)
