"""CallbackWorkflow: one durable workflow per callback request (DESIGN §3.2).

The workflow owns the callback's state. Staff actions arrive as Updates (validated, answered once the
change is in PostgreSQL) or as Signals (the same transition, fire-and-forget). The SLA clock is a loop
that sleeps until the next deadline derived from the state (rules/sla.py), so a priority change or a
manual escalation simply moves the next wake-up. Every step is written by one idempotent local activity
before anything answers, and search attributes follow every step so ops can filter in the Temporal UI.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models import search_attributes
    from models.calcom import FindSlots, FoundSlots
    from models.callbacks import (
        Assign,
        CallbackEvent,
        CallbackState,
        CallbackStatus,
        CallbackWorkflowInput,
        Cancel,
        ChangePriority,
        Complete,
        ContactAttempt,
        CreatedCallback,
        Escalate,
        Escalation,
        EscalationReason,
        LoadCandidates,
        MarkContacted,
        PrepareCallback,
        PreparedCallback,
        RecordAttempt,
        StaffAction,
        StaffCandidate,
        Transition,
    )
    from rules.assignment import choose_assignee, choose_escalation_target, should_auto_assign
    from rules.sla import Deadline, DueKind, next_deadline, sla_deadline
    from rules.transitions import TransitionRefused, check_allowed, status_after_assignment
    from workflows.calcom import find_slots
    from workflows.notifications import notify

DB_TIMEOUT = timedelta(seconds=15)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["InvalidReference"],
)
# A timer can fire a hair early after rounding to milliseconds; treat that as on time.
CLOCK_TOLERANCE = timedelta(milliseconds=5)


class _Step:
    """The transition in progress: a copy of the state being changed and the events it produces."""

    def __init__(self, state: CallbackState, actor: str, now: datetime) -> None:
        self.state = state.model_copy(deep=True)
        self.state.version += 1
        self.actor = actor
        self.now = now
        self.events: list[CallbackEvent] = []
        self.escalation: Escalation | None = None

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

    def assign_to(self, staff_id: UUID) -> None:
        state = self.state
        if state.assigned_to is not None and state.assigned_to != staff_id:
            state.previous_assignees.append(state.assigned_to)
        previous = state.assigned_to
        state.assigned_to = staff_id
        state.assigned_at = self.now
        state.status = status_after_assignment(state.status)
        self.emit("assigned", staff_id=str(staff_id), previous_staff_id=str(previous) if previous else None)


def _preferred_window(window: dict[str, Any] | None, *, after: datetime) -> tuple[datetime, datetime] | None:
    """The customer's preferred time window as aware datetimes, clipped to the future; None when absent,
    malformed or already over (then the next free slots are suggested instead)."""
    if not window:
        return None
    try:
        start = datetime.fromisoformat(str(window["start"]))
        end = datetime.fromisoformat(str(window["end"]))
    except (KeyError, ValueError):
        return None
    if start.tzinfo is None or end.tzinfo is None:
        return None
    start = max(start, after)
    return (start, end) if end > start else None


@workflow.defn
class CallbackWorkflow:
    @workflow.init
    def __init__(self, params: CallbackWorkflowInput) -> None:
        self._state: CallbackState | None = params.carried_state
        self._request_token = params.request_token
        self._creation_error: str | None = None
        self._lock = asyncio.Lock()
        self._changed = False
        # Notifications start in the background so an Update answers right after the write; the run
        # waits for every start before it ends or continues as new.
        self._notifying: list[asyncio.Task[None]] = []
        self._suggesting: asyncio.Task[None] | None = None
        self._bookable = False

    # --- main loop: the SLA clock ---------------------------------------------------------------

    @workflow.run
    async def run(self, params: CallbackWorkflowInput) -> CallbackState:
        if self._state is None:
            try:
                await self._create(params)
            except (ActivityError, ApplicationError) as err:
                # A refused reference (another company's branch, ...) fails creation for good.
                cause = err.cause if isinstance(err, ActivityError) and err.cause else err
                self._creation_error = cause.message if isinstance(cause, ApplicationError) else str(cause)
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise ApplicationError(self._creation_error, type="InvalidCallback") from err
            if self._bookable and workflow.patched("suggest-slots-v1"):
                # After the create Update has answered: a slow Cal.com never delays creation.
                self._suggesting = asyncio.create_task(self._suggest_slots())

        while (deadline := next_deadline(self._current, workflow.now())) is not None:
            wait = deadline.at - workflow.now()
            if wait > CLOCK_TOLERANCE:
                self._changed = False
                try:
                    await workflow.wait_condition(lambda: self._changed, timeout=wait)
                    continue  # the state moved: recompute the deadline
                except TimeoutError:
                    pass
            async with self._lock:
                due = next_deadline(self._current, workflow.now())
                if due is not None and due.at <= workflow.now() + CLOCK_TOLERANCE:
                    await self._on_deadline(due)
            if workflow.info().is_continue_as_new_suggested() and not self._current.status.is_terminal:
                await self._settle()
                workflow.continue_as_new(
                    CallbackWorkflowInput(
                        callback_id=params.callback_id,
                        request=params.request,
                        request_token=params.request_token,
                        carried_state=self._current,
                    )
                )

        await self._settle()
        return self._current

    async def _create(self, params: CallbackWorkflowInput) -> None:
        prepared = await workflow.execute_local_activity(
            names.PREPARE_CALLBACK,
            PrepareCallback(callback_id=params.callback_id, request=params.request),
            result_type=PreparedCallback,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._bookable = prepared.bookable
        now = workflow.now()
        request = params.request
        blank = CallbackState(
            id=params.callback_id,
            request=request,
            settings=prepared.settings,
            priority=request.priority,
            created_at=now,
            expires_at=sla_deadline(now, request.priority, prepared.settings),
            version=0,
        )
        step = _Step(blank, actor="system", now=now)
        step.emit("created", priority=request.priority.value, expires_at=step.state.expires_at.isoformat())
        if should_auto_assign(request.priority, prepared.settings.auto_assign):
            chosen = choose_assignee(
                prepared.candidates, branch_id=request.branch_id, preferred=request.preferred_staff_id
            )
            if chosen is not None:
                step.assign_to(chosen)
        await self._commit(step)

    async def _on_deadline(self, deadline: Deadline) -> None:
        step = _Step(self._current, actor="sla-clock", now=workflow.now())
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
            await self._escalate(step, EscalationReason.SLA_BREACH, details=None)
        else:
            step.state.status = CallbackStatus.EXPIRED
            step.state.expired_at = step.now
            step.emit("expired", escalations=step.state.escalation_count)
        await self._commit(step)

    # --- the one way state changes --------------------------------------------------------------

    @property
    def _current(self) -> CallbackState:
        assert self._state is not None, "the callback is not created yet"
        return self._state

    async def _commit(self, step: _Step) -> None:
        """Persist the step, then make it the current state: a failed write changes nothing."""
        await workflow.execute_local_activity(
            names.PERSIST_TRANSITION,
            Transition(state=step.state, events=step.events, escalation=step.escalation),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._state = step.state
        self._changed = True
        workflow.upsert_search_attributes(search_attributes.updates_for(step.state))
        if step.events and workflow.patched("notifications-v1"):
            self._notifying.append(asyncio.create_task(notify(step.events, step.state)))

    async def _settle(self) -> None:
        """Let running handlers and notification starts finish before the run ends or continues as new;
        a slot lookup still running for a finished callback is no longer of use to anyone."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._suggesting is not None:
            if self._current.status.is_terminal:
                self._suggesting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._suggesting
        await asyncio.gather(*self._notifying)

    async def _suggest_slots(self) -> None:
        """Attach the next free Cal.com slots of the service (inside the customer's preferred window when
        one is given), so staff can offer an appointment when they call back."""
        request = self._current.request
        assert request.service_id is not None
        search = FindSlots(service_id=request.service_id, company_id=request.company_id, after=workflow.now())
        window = _preferred_window(request.preferred_time_window, after=workflow.now())
        if window is not None:
            with contextlib.suppress(ValueError):  # e.g. a window too long: then the next free slots
                search = search.model_copy(update={"window_start": window[0], "window_end": window[1]})
                search = FindSlots.model_validate(search.model_dump())
        try:
            found: FoundSlots = await find_slots(search)
        except ActivityError as err:
            workflow.logger.warning("no slot suggestions for %s: %s", self._current.id, err.cause or err)
            return
        async with self._lock:
            if self._current.status.is_terminal:
                return
            step = _Step(self._current, actor="slot-finder", now=workflow.now())
            step.state.suggested_slots = found.slots
            step.emit(
                "slots_suggested",
                count=len(found.slots),
                first=found.slots[0].start.isoformat() if found.slots else None,
                note=found.note,
            )
            await self._commit(step)

    async def _candidates(self, include: list[UUID] | None = None) -> list[StaffCandidate]:
        request = self._current.request
        candidates: list[StaffCandidate] = await workflow.execute_local_activity(
            names.LOAD_STAFF_CANDIDATES,
            LoadCandidates(
                company_id=request.company_id,
                branch_id=request.branch_id,
                service_id=request.service_id,
                include=include or [],
            ),
            result_type=list[StaffCandidate],
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return candidates

    async def _escalate(self, step: _Step, reason: EscalationReason, details: str | None) -> None:
        state = step.state
        target = choose_escalation_target(
            await self._candidates(),
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
            at=step.now,
        )
        state.escalations.append(escalation)
        step.escalation = escalation
        step.emit(
            "escalated",
            number=escalation.number,
            reason=reason.value,
            details=details,
            escalated_from=str(escalation.escalated_from) if escalation.escalated_from else None,
            escalated_to=str(target) if target else None,
        )
        if target is not None:
            step.assign_to(target)

    async def _act(
        self, action: StaffAction, actor: str, apply: Callable[[_Step], Awaitable[None]]
    ) -> CallbackState:
        """Run one staff action under the lock: re-check it against the state it will really change."""
        await workflow.wait_condition(lambda: self._state is not None or self._creation_error is not None)
        if self._creation_error is not None:
            raise ApplicationError(self._creation_error, type="InvalidCallback")
        async with self._lock:
            try:
                check_allowed(action, self._current.status)
            except TransitionRefused as refused:
                raise ApplicationError(str(refused), type="TransitionRefused", non_retryable=True) from None
            step = _Step(self._current, actor=actor, now=workflow.now())
            await apply(step)
            await self._commit(step)
            return self._current

    def _validate(self, action: StaffAction) -> None:
        """Update validators refuse early (nothing is written to history); the handler re-checks."""
        if self._state is not None:
            check_allowed(action, self._state.status)

    # --- transitions ----------------------------------------------------------------------------

    async def _assign(self, step: _Step, command: Assign) -> None:
        staff = {c.id: c for c in await self._candidates(include=[command.staff_id])}
        candidate = staff.get(command.staff_id)
        if candidate is None or not candidate.active:
            raise ApplicationError(
                f"staff {command.staff_id} is not an active staff member of company "
                f"{step.state.request.company_id}",
                type="InvalidStaff",
                non_retryable=True,
            )
        step.assign_to(command.staff_id)

    async def _mark_contacted(self, step: _Step, command: MarkContacted) -> None:
        step.state.status = CallbackStatus.CONTACTED
        step.state.contacted_at = step.now
        step.emit("contacted", staff_id=str(step.state.assigned_to))

    async def _record_attempt(self, step: _Step, command: RecordAttempt) -> None:
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
        if attempt.number % state.settings.max_contact_attempts == 0:
            await self._escalate(
                step,
                EscalationReason.MULTIPLE_ATTEMPTS_FAILED,
                details=f"{attempt.number} failed contact attempts",
            )

    async def _complete(self, step: _Step, command: Complete) -> None:
        step.state.status = CallbackStatus.COMPLETED
        step.state.completed_at = step.now
        step.state.completion_notes = command.notes
        step.emit("completed", notes=command.notes, on_time=step.now <= step.state.expires_at)

    async def _cancel(self, step: _Step, command: Cancel) -> None:
        step.state.status = CallbackStatus.CANCELLED
        step.state.cancelled_at = step.now
        step.state.cancel_reason = command.reason
        step.emit("cancelled", reason=command.reason)

    async def _escalate_manually(self, step: _Step, command: Escalate) -> None:
        details = command.reason if not command.details else f"{command.reason}: {command.details}"
        await self._escalate(step, EscalationReason.MANUAL, details=details)

    async def _change_priority(self, step: _Step, command: ChangePriority) -> None:
        state = step.state
        previous = state.priority
        state.priority = command.priority
        state.expires_at = sla_deadline(state.created_at, command.priority, state.settings)
        step.emit(
            "priority_changed",
            previous=previous.value,
            priority=command.priority.value,
            expires_at=state.expires_at.isoformat(),
        )

    _TRANSITIONS: dict[StaffAction, str] = {
        StaffAction.ASSIGN: "_assign",
        StaffAction.MARK_CONTACTED: "_mark_contacted",
        StaffAction.RECORD_ATTEMPT: "_record_attempt",
        StaffAction.COMPLETE: "_complete",
        StaffAction.CANCEL: "_cancel",
        StaffAction.ESCALATE: "_escalate_manually",
        StaffAction.CHANGE_PRIORITY: "_change_priority",
    }

    async def _perform(self, action: StaffAction, command: Any) -> CallbackState:
        transition = getattr(self, self._TRANSITIONS[action])
        return await self._act(action, command.actor, lambda step: transition(step, command))

    # --- Updates (validated, answered after the write) ------------------------------------------

    @workflow.update
    async def created(self, request_token: str) -> CreatedCallback:
        """Answers once the callback is stored: the Update of Update-With-Start makes `create` synchronous.
        `created` is true only for the call whose token started this workflow."""
        await workflow.wait_condition(lambda: self._state is not None or self._creation_error is not None)
        if self._creation_error is not None:
            raise ApplicationError(self._creation_error, type="InvalidCallback")
        return CreatedCallback(
            state=self._current, created=bool(request_token) and request_token == self._request_token
        )

    @workflow.update
    async def assign(self, command: Assign) -> CallbackState:
        return await self._perform(StaffAction.ASSIGN, command)

    @assign.validator
    def _validate_assign(self, command: Assign) -> None:
        self._validate(StaffAction.ASSIGN)

    @workflow.update
    async def mark_contacted(self, command: MarkContacted) -> CallbackState:
        return await self._perform(StaffAction.MARK_CONTACTED, command)

    @mark_contacted.validator
    def _validate_mark_contacted(self, command: MarkContacted) -> None:
        self._validate(StaffAction.MARK_CONTACTED)

    @workflow.update
    async def record_attempt(self, command: RecordAttempt) -> CallbackState:
        return await self._perform(StaffAction.RECORD_ATTEMPT, command)

    @record_attempt.validator
    def _validate_record_attempt(self, command: RecordAttempt) -> None:
        self._validate(StaffAction.RECORD_ATTEMPT)

    @workflow.update
    async def complete(self, command: Complete) -> CallbackState:
        return await self._perform(StaffAction.COMPLETE, command)

    @complete.validator
    def _validate_complete(self, command: Complete) -> None:
        self._validate(StaffAction.COMPLETE)

    @workflow.update
    async def cancel(self, command: Cancel) -> CallbackState:
        return await self._perform(StaffAction.CANCEL, command)

    @cancel.validator
    def _validate_cancel(self, command: Cancel) -> None:
        self._validate(StaffAction.CANCEL)

    @workflow.update
    async def escalate(self, command: Escalate) -> CallbackState:
        return await self._perform(StaffAction.ESCALATE, command)

    @escalate.validator
    def _validate_escalate(self, command: Escalate) -> None:
        self._validate(StaffAction.ESCALATE)

    @workflow.update
    async def change_priority(self, command: ChangePriority) -> CallbackState:
        return await self._perform(StaffAction.CHANGE_PRIORITY, command)

    @change_priority.validator
    def _validate_change_priority(self, command: ChangePriority) -> None:
        self._validate(StaffAction.CHANGE_PRIORITY)

    # --- Signals (the same transitions, for fire-and-forget senders) ----------------------------

    async def _from_signal(self, action: StaffAction, command: Any) -> None:
        """A signal cannot answer, so a refused one is logged and the workflow carries on."""
        try:
            await self._perform(action, command)
        except ApplicationError as refused:
            workflow.logger.warning("signal %s refused: %s", action.value, refused)

    @workflow.signal(name="assign")
    async def assign_signal(self, command: Assign) -> None:
        await self._from_signal(StaffAction.ASSIGN, command)

    @workflow.signal(name="mark_contacted")
    async def mark_contacted_signal(self, command: MarkContacted) -> None:
        await self._from_signal(StaffAction.MARK_CONTACTED, command)

    @workflow.signal(name="record_attempt")
    async def record_attempt_signal(self, command: RecordAttempt) -> None:
        await self._from_signal(StaffAction.RECORD_ATTEMPT, command)

    @workflow.signal(name="complete")
    async def complete_signal(self, command: Complete) -> None:
        await self._from_signal(StaffAction.COMPLETE, command)

    @workflow.signal(name="cancel")
    async def cancel_signal(self, command: Cancel) -> None:
        await self._from_signal(StaffAction.CANCEL, command)

    @workflow.signal(name="escalate")
    async def escalate_signal(self, command: Escalate) -> None:
        await self._from_signal(StaffAction.ESCALATE, command)

    @workflow.signal(name="change_priority")
    async def change_priority_signal(self, command: ChangePriority) -> None:
        await self._from_signal(StaffAction.CHANGE_PRIORITY, command)

    # --- Query ----------------------------------------------------------------------------------

    @workflow.query
    def state(self) -> CallbackState | None:
        return self._state
