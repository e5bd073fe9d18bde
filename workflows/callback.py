"""CallbackWorkflow: one durable workflow per callback request.

The workflow owns the callback's state and orchestrates; what each step does to the state is decided by
the pure state machine (rules/callback_machine.py) and the staff-action table (rules/staff_actions.py).
Staff actions arrive as Updates (validated, answered once the change is in PostgreSQL) or as Signals (the
same transition, fire-and-forget); both are registered from the table. The SLA clock is a loop that sleeps
until the next deadline derived from the state (rules/sla.py), so a priority change or a manual escalation
simply moves the next wake-up. Every step is written by one idempotent local activity before anything
answers, and search attributes follow every step so ops can filter in the Temporal UI.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models import search_attributes
    from models.calcom import FoundSlots
    from models.callbacks import (
        STAFF_DEACTIVATED_SIGNAL,
        CallbackState,
        CallbackWorkflowInput,
        CreatedCallback,
        LoadCandidates,
        PrepareCallback,
        PreparedCallback,
        StaffCandidate,
        StaffCommand,
        StaffDeactivated,
        Transition,
    )
    from rules import callback_machine as machine
    from rules.callback_machine import AlreadyTaken, StaffNeeded, StaffRefused, Step
    from rules.sla import Deadline, next_deadline
    from rules.staff_actions import STAFF_ACTIONS, StaffActionSpec
    from rules.transitions import TransitionRefused, check_allowed
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

W = TypeVar("W", bound=type)


def _handlers(
    spec: StaffActionSpec[Any],
) -> tuple[Callable[..., Any], Callable[..., None], Callable[..., Any]]:
    """The Update, its validator and the Signal of one staff action, typed with the action's command model
    so the data converter hands them that model (as the written-out methods were)."""

    async def update(self: CallbackWorkflow, command: StaffCommand) -> CallbackState:
        return await self._perform(spec, command)

    def validator(self: CallbackWorkflow, command: StaffCommand) -> None:
        self._validate(spec, command)

    async def signal(self: CallbackWorkflow, command: StaffCommand) -> None:
        await self._from_signal(spec, command)

    name = spec.action.value
    for fn, suffix, returns in (
        (update, "", CallbackState),
        (validator, "_validator", None),
        (signal, "_signal", None),
    ):
        fn.__name__ = f"{name}{suffix}"
        fn.__qualname__ = f"CallbackWorkflow.{name}{suffix}"
        fn.__annotations__ = {"command": spec.command, "return": returns}
    return update, validator, signal


def _with_staff_actions(cls: W) -> W:
    """Give the workflow an Update (with validator) and a Signal per row of the staff-action table.

    They are put on the class before `@workflow.defn` reads it, so to the SDK they are ordinary
    `@workflow.update(name=...)` / `@workflow.signal(name=...)` methods with the same names, argument types
    and handling order as when they were written out, and recorded histories replay. (Registering them at
    run time with `workflow.set_update_handler` / `set_signal_handler` from `__init__` would hold back a
    Signal of the first workflow task until after that task's Updates: a different order on replay.)
    """
    for spec in STAFF_ACTIONS.values():
        update, validator, signal = _handlers(spec)
        name = spec.action.value
        registered = workflow.update(name=name, description=spec.summary)(update)
        registered.validator(validator)
        setattr(cls, name, registered)
        setattr(cls, f"{name}_signal", workflow.signal(name=name, description=spec.summary)(signal))
    return cls


@workflow.defn
@_with_staff_actions
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
        # Whom the rules pick is claimed in the write (its capacity re-checked under a lock): when
        # concurrent creations took the last place first, pick again among the others.
        now, full = workflow.now(), list[UUID]()
        while True:
            try:
                await self._commit(
                    machine.open_callback(params.callback_id, params.request, prepared, now, full)
                )
                return
            except (ActivityError, ApplicationError) as err:
                taken = _capacity_full(err)
                if taken is None or taken in full:
                    raise
                full.append(taken)

    async def _on_deadline(self, deadline: Deadline) -> None:
        now = workflow.now()
        staff = await self._candidates(machine.staff_for_deadline(deadline))
        await self._commit(machine.on_deadline(self._current, deadline, now, staff))

    # --- the one way state changes --------------------------------------------------------------

    @property
    def _current(self) -> CallbackState:
        assert self._state is not None, "the callback is not created yet"
        return self._state

    async def _commit(self, step: Step) -> None:
        """Persist the step, then make it the current state: a failed write changes nothing."""
        await workflow.execute_local_activity(
            names.PERSIST_TRANSITION,
            Transition(state=step.state, events=step.events, escalation=step.escalation, claim=step.claim),
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
        try:
            found: FoundSlots = await find_slots(machine.slot_search(self._current.request, workflow.now()))
        except ActivityError as err:
            workflow.logger.warning("no slot suggestions for %s: %s", self._current.id, err.cause or err)
            return
        async with self._lock:
            if not self._current.status.is_terminal:
                await self._commit(machine.slots_suggested(self._current, found, workflow.now()))

    async def _candidates(self, needed: StaffNeeded | None) -> list[StaffCandidate]:
        """The staff a step needs (no activity when it needs none)."""
        if needed is None:
            return []
        request = self._current.request
        candidates: list[StaffCandidate] = await workflow.execute_local_activity(
            names.LOAD_STAFF_CANDIDATES,
            LoadCandidates(
                company_id=request.company_id,
                branch_id=request.branch_id,
                service_id=request.service_id,
                include=list(needed.include),
            ),
            result_type=list[StaffCandidate],
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return candidates

    # --- staff actions (Updates and Signals, registered from the table) ------------------------

    async def _perform(self, spec: StaffActionSpec[Any], command: StaffCommand) -> CallbackState:
        """Run one staff action under the lock: re-check it against the state it will really change."""
        await workflow.wait_condition(lambda: self._state is not None or self._creation_error is not None)
        if self._creation_error is not None:
            raise ApplicationError(self._creation_error, type="InvalidCallback")
        async with self._lock:
            try:
                check_allowed(spec.action, self._current.status)
            except TransitionRefused as refused:
                raise ApplicationError(str(refused), type="TransitionRefused", non_retryable=True) from None
            now = workflow.now()
            staff = await self._candidates(spec.staff(self._current, command))
            try:
                step = spec.apply(self._current, command, now, staff)
            except StaffRefused as refused:
                raise ApplicationError(str(refused), type="InvalidStaff", non_retryable=True) from None
            except AlreadyTaken as taken:
                raise ApplicationError(str(taken), type="AlreadyTaken", non_retryable=True) from None
            await self._commit(step)
            return self._current

    def _validate(self, spec: StaffActionSpec[Any], command: StaffCommand) -> None:
        """Update validators refuse early (nothing is written to history); the handler re-checks."""
        if self._state is not None:
            check_allowed(spec.action, self._state.status)
            spec.guard(self._state, command)

    async def _from_signal(self, spec: StaffActionSpec[Any], command: StaffCommand) -> None:
        """A signal cannot answer, so a refused one is logged and the workflow carries on."""
        try:
            await self._perform(spec, command)
        except ApplicationError as refused:
            workflow.logger.warning("signal %s refused: %s", spec.action.value, refused)

    # --- the assignee left ------------------------------------------------------------------------

    @workflow.signal(
        name=STAFF_DEACTIVATED_SIGNAL,
        description="The staff member was deactivated: hand their callback to someone else.",
    )
    async def staff_deactivated(self, signal: StaffDeactivated) -> None:
        """Reassign (rules/callback_machine.py `assignee_left`) if the callback is open and still theirs;
        persisted like every other step. Sent by the API for each open callback of a deactivated member."""
        await workflow.wait_condition(lambda: self._state is not None or self._creation_error is not None)
        # During a rolling deploy a worker of the previous release may have taken this signal without a
        # handler (and recorded no commands for it): replaying that history must do nothing here either.
        if self._creation_error is not None or not workflow.patched("staff-deactivated-v1"):
            return
        async with self._lock:
            needed = machine.staff_for_assignee_left(self._current, signal.staff_id)
            staff = await self._candidates(needed)
            step = machine.assignee_left(
                self._current, signal.staff_id, workflow.now(), staff, actor=signal.actor
            )
            if step is not None:
                await self._commit(step)

    # --- the create Update and the query ---------------------------------------------------------

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

    @workflow.query
    def state(self) -> CallbackState | None:
        return self._state


def _capacity_full(err: ActivityError | ApplicationError) -> UUID | None:
    """The staff member whose capacity a failed write found taken (activities/callbacks.py), or None for
    any other failure."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if not isinstance(cause, ApplicationError) or cause.type != names.CAPACITY_FULL or not cause.details:
        return None
    return UUID(str(cause.details[0]))
