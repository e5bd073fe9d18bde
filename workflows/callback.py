"""CallbackWorkflow: one durable workflow per callback request.

The workflow owns the callback's state and orchestrates; what each step does to the state is decided by
the pure state machine (rules/callback_machine.py) and the staff-action table (rules/staff_actions.py).
Staff actions arrive as Updates (validated, answered once the change is in PostgreSQL) or as Signals (the
same transition, fire-and-forget); both are registered from the table. The SLA clock is a loop that sleeps
until the next deadline derived from the state (rules/sla.py), so a priority change or a manual escalation
simply moves the next wake-up. Every step is written by one idempotent local activity before anything
answers (a callback the API opens starts from the first step the API wrote: starter/opening.py), and
search attributes follow every step so ops can filter in the Temporal UI. A database step that keeps
failing is retried with a bound and shows the callback as stuck (workflows/db_steps.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.calcom import FoundSlots
    from models.callbacks import (
        ERASED,
        STAFF_DEACTIVATED_SIGNAL,
        CallbackState,
        CallbackWorkflowInput,
        CreatedCallback,
        ErasePersonalData,
        LoadCandidates,
        PrepareCallback,
        PreparedCallback,
        StaffCandidate,
        StaffCommand,
        StaffDeactivated,
        Transition,
    )
    from models.stuck import RETRY_STUCK_SIGNAL, STUCK_QUERY, StuckMark, StuckStep
    from rules import assignee_left, dead_references, personal_data
    from rules import callback_machine as machine
    from rules.assignment import at_capacity
    from rules.callback_machine import AlreadyTaken, StaffNeeded, StaffRefused, Step
    from rules.first_step import first_step_moment
    from rules.shifts import ignoring_shifts, without_calendars
    from rules.sla import Deadline, next_deadline
    from rules.staff_actions import StaffActionSpec
    from rules.transitions import TransitionRefused, check_allowed
    from workflows.calcom import find_slots
    from workflows.callback_patches import (
        CALENDARS_PATCH,
        DROP_DEAD_REFERENCES,
        GENERATION_PATCHES,
        HOT_PATH,
        NOTIFICATIONS_PATCH,
        STAFF_DEACTIVATED_PATCH,
        SUGGEST_SLOTS_PATCH,
    )
    from workflows.db_steps import DatabaseSteps, stuck_refusal
    from workflows.notifications import notify
    from workflows.shown_attributes import show_attributes
    from workflows.staff_handlers import with_staff_actions
    from workflows.update_keys import UpdateKeys
    from workflows.write_failures import capacity_taken, dead_references_found

# A write that finds a reference dead drops it and writes again; more rounds than this is a bug.
MAX_DROPS = 3
# A timer can fire a hair early after rounding to milliseconds; treat that as on time.
CLOCK_TOLERANCE = timedelta(milliseconds=5)


@workflow.defn
@with_staff_actions
class CallbackWorkflow:
    @workflow.init
    def __init__(self, params: CallbackWorkflowInput) -> None:
        self._state: CallbackState | None = params.carried_state
        self._request_token = params.request_token
        self._generation = params.generation
        self._creation_error: str | None = None
        self._lock = asyncio.Lock()
        self._changed = False
        # Notifications start in the background so an Update answers right after the write; the run
        # waits for every start before it ends or continues as new.
        self._notifying: list[asyncio.Task[None]] = []
        self._suggesting: asyncio.Task[None] | None = None
        self._bookable = params.suggest_slots  # set by the API's start (starter/opening.py) or `_create`
        # Every database step goes through here: retried with a bound, stuck when it keeps failing.
        self._db = DatabaseSteps(params.callback_id, params.request.company_id)
        # Which request each Idempotency-Key of the staff actions carried (a reused key is refused).
        self._keys = UpdateKeys()

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
        if self._bookable and self._patched(SUGGEST_SLOTS_PATCH):
            # After the create has answered: a slow Cal.com never delays creation.
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
                        # The current request: after an erasure it no longer holds the personal data.
                        request=self._current.request,
                        request_token=params.request_token,
                        carried_state=self._current,
                        generation=params.generation,
                    )
                )

        await self._settle()
        return self._current

    async def _create(self, params: CallbackWorkflowInput) -> None:
        # Prepared by a starter that could (CallbackClient.create): then no prepare step of our own.
        prepared = params.prepared
        if prepared is None:
            prepared = await self._db.run(
                StuckStep.PREPARE,
                names.PREPARE_CALLBACK,
                PrepareCallback(callback_id=params.callback_id, request=params.request, at=workflow.now()),
                result_type=PreparedCallback,
            )
        prepared = prepared if self._patched(CALENDARS_PATCH) else without_calendars(prepared)
        self._bookable = prepared.bookable
        now = first_step_moment(params.prepared, workflow.now())
        await self._commit_picked(
            lambda full: machine.open_callback(params.callback_id, params.request, prepared, now, full)
        )
        if params.prepared is not None:
            # The SDK keeps the start's input for as long as the run is cached (days): its candidates,
            # most of a preparation, served this first decision only.
            params.prepared.candidates.clear()

    async def _on_deadline(self, deadline: Deadline) -> None:
        now = workflow.now()  # shifts are read at the deadline itself, even if the timer fired a hair early
        needed = machine.staff_for_deadline(deadline, self._current)
        staff = await self._candidates(needed, at=max(now, deadline.at))
        await self._commit_picked(
            lambda full: machine.on_deadline(self._current, deadline, now, at_capacity(staff, full))
        )

    # --- the one way state changes --------------------------------------------------------------

    def _patched(self, patch_id: str) -> bool:
        """`workflow.patched`, except that a run takes the patches of its generation without recording
        a marker (deterministic all the same: the generation is in its input). A patch added later is
        asked by every run, whatever its generation."""
        return patch_id in GENERATION_PATCHES.get(self._generation, ()) or workflow.patched(patch_id)

    @property
    def _current(self) -> CallbackState:
        assert self._state is not None, "the callback is not created yet"
        return self._state

    async def _commit(self, step: Step) -> None:
        """Persist the step, then make it the current state: a failed write changes nothing.

        A write that finds a referenced row deleted (by SQL, outside the API) drops the dead reference
        from the step, records that, and writes again, instead of retrying a write that cannot succeed."""
        # The write puts the step's notifications into the outbox (activities/notification_outbox.py);
        # runs recorded before that started them from here, after the write.
        outbox = self._patched(HOT_PATH)
        for drops in range(MAX_DROPS + 1):
            try:
                await self._db.run(
                    StuckStep.PERSIST,
                    names.PERSIST_TRANSITION,
                    Transition(
                        state=step.state,
                        events=step.events,
                        escalation=step.escalation,
                        claim=step.claim,
                        notify=outbox,
                    ),
                )
                break
            except (ActivityError, ApplicationError) as err:
                dead = dead_references_found(err)
                if dead is None or drops == MAX_DROPS or not self._patched(DROP_DEAD_REFERENCES):
                    raise
                workflow.logger.warning(
                    "callback %s: dropping dead references %s", step.state.id, dead.fields
                )
                if dead_references.orphaned(dead):
                    dead_references.end_orphaned(step, dead)
                    self._state = step.state  # its row is gone with its branch: nothing left to write to
                    self._changed = True
                    show_attributes(step.state, only_changes=False)
                    return
                dead_references.drop_references(step, dead)
        self._state = step.state
        self._changed = True
        show_attributes(step.state, only_changes=outbox)
        if step.events and not outbox and self._patched(NOTIFICATIONS_PATCH):
            self._notifying.append(asyncio.create_task(notify(step.events, step.state)))

    async def _commit_picked(self, decide: Callable[[list[UUID]], Step | None]) -> None:
        """Write the step `decide` makes. Whom the rules picked is claimed in the write (their capacity
        re-checked under a lock on their row): when concurrent writes took their last place first, decide
        again with them full."""
        full: list[UUID] = []
        while (step := decide(full)) is not None:
            try:
                await self._commit(step)
                return
            except (ActivityError, ApplicationError) as err:
                taken = capacity_taken(err)
                if taken is None or taken in full:
                    raise
                full.append(taken)

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

    async def _candidates(self, needed: StaffNeeded | None, at: datetime) -> list[StaffCandidate]:
        """The staff a step needs, with their shifts at `at` (no activity when it needs none)."""
        if needed is None:
            return []
        request = self._current.request
        candidates: list[StaffCandidate] = await self._db.run(
            StuckStep.CANDIDATES,
            names.LOAD_STAFF_CANDIDATES,
            LoadCandidates(
                company_id=request.company_id,
                branch_id=request.branch_id,
                service_id=request.service_id,
                include=list(needed.include),
                at=at,
            ),
            result_type=list[StaffCandidate],
        )
        return candidates if self._patched(CALENDARS_PATCH) else ignoring_shifts(candidates)

    # --- staff actions (Updates and Signals, registered from the table) ------------------------

    async def _perform(self, spec: StaffActionSpec[Any], command: StaffCommand) -> CallbackState:
        """Run one staff action under the lock: re-check it against the state it will really change."""
        self._keys.record()
        await workflow.wait_condition(lambda: self._state is not None or self._creation_error is not None)
        if self._creation_error is not None:
            raise ApplicationError(self._creation_error, type="InvalidCallback")
        async with self._lock:
            try:
                check_allowed(spec.action, self._current.status)
            except TransitionRefused as refused:
                raise ApplicationError(str(refused), type="TransitionRefused", non_retryable=True) from None
            now = workflow.now()
            staff = await self._candidates(spec.staff(self._current, command), now)
            try:
                await self._commit_picked(
                    lambda full: spec.apply(self._current, command, now, at_capacity(staff, full))
                )
            except StaffRefused as refused:
                raise ApplicationError(str(refused), type="InvalidStaff", non_retryable=True) from None
            except AlreadyTaken as taken:
                raise ApplicationError(str(taken), type="AlreadyTaken", non_retryable=True) from None
            return self._current

    def _validate(self, spec: StaffActionSpec[Any], command: StaffCommand) -> None:
        """Update validators refuse early (nothing is written to history); the handler re-checks. A stuck
        callback takes no staff action: it could not be written, and would be applied who knows when."""
        self._keys.check()
        if self._db.stuck is not None:
            raise ApplicationError(stuck_refusal(self._db.stuck), type="CallbackStuck")
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
        """Reassign (rules/assignee_left.py) if the callback is open and still theirs;
        persisted like every other step. Sent by the API for each open callback of a deactivated member."""
        await workflow.wait_condition(lambda: self._state is not None or self._creation_error is not None)
        # During a rolling deploy a worker of the previous release may have taken this signal without a
        # handler (and recorded no commands for it): replaying that history must do nothing here either.
        if self._creation_error is not None or not self._patched(STAFF_DEACTIVATED_PATCH):
            return
        async with self._lock:
            needed = assignee_left.staff_for_assignee_left(self._current, signal.staff_id)
            staff = await self._candidates(needed, workflow.now())
            now = workflow.now()
            await self._commit_picked(
                lambda full: assignee_left.assignee_left(
                    self._current, signal.staff_id, now, at_capacity(staff, full), actor=signal.actor
                )
            )

    # --- erasure (GDPR Art. 17; api/customers_erase.py) -------------------------------------------

    @workflow.update(name="erase_personal_data")
    async def erase_personal_data(self, command: ErasePersonalData) -> CallbackState:
        """Blank the customer's personal data in the state (and its row, through the same write); the
        callback goes on as before, SLA clock included. Erasing an erased callback changes nothing."""
        await workflow.wait_condition(lambda: self._state is not None or self._creation_error is not None)
        if self._creation_error is not None:
            raise ApplicationError(self._creation_error, type="InvalidCallback")
        async with self._lock:
            if personal_data.has_personal_data(self._current):
                await self._commit(
                    personal_data.erase_personal_data(self._current, command.actor, workflow.now())
                )
                workflow.upsert_memo({"customer_name": ERASED, "phone": ERASED})
            return self._current

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

    @workflow.query(name="update_key")
    def update_key(self, key: str) -> str | None:
        """The request digest a staff action's Idempotency-Key (digest) came with (models/update_keys.py)."""
        return self._keys.request_of(key)

    # --- stuck (workflows/db_steps.py) ------------------------------------------------------------

    @workflow.query(name=STUCK_QUERY)
    def stuck(self) -> StuckMark | None:
        """The database step that keeps failing, since when, and whether the workflow gave up on it."""
        return self._db.stuck

    @workflow.signal(name=RETRY_STUCK_SIGNAL)
    def retry_stuck(self) -> None:
        """An operator fixed what made the callback stuck: try the step again now."""
        self._db.retry_now()
