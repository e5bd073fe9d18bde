"""AppointmentWorkflow: one workflow per appointment (`c<company>.appointment-<id>`) that applies its cancel
and reschedule requests one at a time, in the order they arrive.

Why one per appointment: a cancel racing a reschedule of the same appointment, each in a run of its own,
could leave the appointment cancelled here while the new Cal.com booking lived on. Here the second waits
until the first is settled, and is then decided on what the first left.

Each request arrives as the Update `change` (Update-With-Start, starter/appointments.py) and waits for its
outcome; the run takes them from its queue one by one:

1. begin (one transaction, store/appointment_changes.py): the decision at the request's `requested_at`,
   quota counted under a per-customer lock, written down with the request before anything is done. A
   request id seen before answers from its row (or is refused when it was used for another change);
2. Cal.com (when the appointment is booked there): cancel or reschedule. A run that resumes a request
   written down earlier, and every retried attempt, reads the booking back first (activities/calcom.py),
   so a move whose answer was lost is found, not sent again on the old uid;
3. finish (one transaction): the modification, the stats, the appointment and the request's outcome;
4. the notification of an applied change.

A request whose Cal.com call did not complete within the retry budget is answered `CalcomUnavailable` and
stays *unsettled*: it is settled (by reading Cal.com back) before any other request of the appointment is
applied, when its id is sent again, and every `SETTLE_RETRY_EVERY` on its own. The run continues as new
after `CONTINUE_AFTER` requests, carrying what is unsettled, and ends after `IDLE_AFTER` without requests.

Deterministic: activities are referenced by name; only models and rules are imported.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.appointment_workflow import (
        AppointmentWorkflowInput,
        BeginChange,
        BeginStep,
        BegunChange,
        FinishChange,
        FinishedChange,
        SettleChange,
    )
    from models.appointments import (
        AppointmentChangeOutcome,
        AppointmentChangePlan,
        AppointmentChangeRequest,
        ChangeStatus,
    )
    from models.calcom import Booking, CancelBooking, RescheduleBooking
    from models.policies import ModificationType
    from rules.appointment_changes import outcome
    from workflows import calcom
    from workflows.appointment_change import (
        CALCOM_GIVE_UP_AFTER,
        CALCOM_UNAVAILABLE,
        DB_START_TO_CLOSE,
        PLAN_RETRY,
        RECORD_RETRY,
        change_event,
        notify_change_workflow_id,
        refusal_of,
        undo_new_booking,
    )
    from workflows.notifications import notify_event

REQUEST_ID_REUSED = "RequestIdReused"
NOT_DECIDED = "ChangeNotDecided"
IDLE_AFTER = timedelta(minutes=10)
SETTLE_RETRY_EVERY = timedelta(minutes=5)
CONTINUE_AFTER = 100

Answer = AppointmentChangeOutcome | ApplicationError


def _failure(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name="AppointmentWorkflow")
class AppointmentWorkflow:
    @workflow.init
    def __init__(self, start: AppointmentWorkflowInput) -> None:
        self._company_id = start.company_id
        self._appointment_id = start.appointment_id
        self._queue: list[AppointmentChangeRequest] = []
        self._unsettled: list[AppointmentChangeRequest] = list(start.unsettled)
        self._current: AppointmentChangeRequest | None = None
        self._answers: dict[str, Answer] = {}
        self._waiting: dict[str, int] = {}
        self._retry_now = False
        self._handled = 0
        self._gone = False  # the appointment does not exist: the run ends once nothing else waits

    @workflow.run
    async def run(self, start: AppointmentWorkflowInput) -> None:
        while True:
            request = await self._next()
            if request is not None:
                await self._take(request)
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._queue or self._retry_now:
                continue
            if self._unsettled or self._continue_due():
                workflow.continue_as_new(
                    AppointmentWorkflowInput(
                        company_id=self._company_id,
                        appointment_id=self._appointment_id,
                        unsettled=self._unsettled,
                    )
                )
            return

    @workflow.update
    async def change(self, request: AppointmentChangeRequest) -> AppointmentChangeOutcome:
        """Apply `request` after those before it; the same request id sent twice waits for one outcome."""
        if request.requested_at is None:
            request = request.model_copy(update={"requested_at": workflow.now()})
        key = request.request_id
        known = self._known(key)
        if known is None:
            self._queue.append(request)
        elif known.fingerprint != request.fingerprint:
            raise _failure(
                f"request id {key!r} is in use for the {known.describe()}; this request (the "
                f"{request.describe()}) is a different change: send it with a new request id",
                REQUEST_ID_REUSED,
            )
        elif any(item.request_id == key for item in self._unsettled):
            self._retry_now = True
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            await workflow.wait_condition(lambda: key in self._answers)
            answer = self._answers[key]
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._answers.pop(key, None)
        if isinstance(answer, ApplicationError):
            raise _failure(answer.message, answer.type or "ApplicationError")
        return answer

    @change.validator
    def _belongs_here(self, request: AppointmentChangeRequest) -> None:
        if (request.company_id, request.appointment_id) != (self._company_id, self._appointment_id):
            raise ValueError(
                f"this workflow changes appointment {self._appointment_id} of company {self._company_id}"
            )

    def _known(self, request_id: str) -> AppointmentChangeRequest | None:
        """The request with this id that is being applied, queued or unsettled, if any."""
        candidates = [*([self._current] if self._current else []), *self._queue, *self._unsettled]
        return next((item for item in candidates if item.request_id == request_id), None)

    def _continue_due(self) -> bool:
        return self._handled >= CONTINUE_AFTER or workflow.info().is_continue_as_new_suggested()

    async def _next(self) -> AppointmentChangeRequest | None:
        """The next request to apply: an unsettled one first (when someone waits, or its retry is due),
        else the oldest queued; None when the run should end or continue as new."""
        while True:
            if self._unsettled:
                if not (self._retry_now or self._queue):
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(
                            lambda: self._retry_now or bool(self._queue), timeout=SETTLE_RETRY_EVERY
                        )
                self._retry_now = False
                if self._continue_due() and not self._queue and not self._waiting:
                    return None
                return self._unsettled.pop(0)
            if self._queue:
                return self._queue.pop(0)
            if self._continue_due() or self._gone:
                return None
            try:
                await workflow.wait_condition(
                    lambda: bool(self._queue) or bool(self._unsettled), timeout=IDLE_AFTER
                )
            except TimeoutError:
                if not self._queue:
                    return None

    async def _take(self, request: AppointmentChangeRequest) -> None:
        self._current = request
        try:
            answer = await self._apply(request)
        finally:
            self._current = None
        self._handled += 1
        self._gone = isinstance(answer, AppointmentChangeOutcome) and answer.status is ChangeStatus.NOT_FOUND
        self._answer(request.request_id, answer)
        if self._unsettled and self._unsettled[0] is request:
            # Still not settled: what waits behind it must not act on an appointment in doubt.
            blocked = self._queue
            self._queue = []
            for waiting in blocked:
                self._answer(
                    waiting.request_id,
                    _failure(
                        f"an earlier change of appointment {self._appointment_id} (request "
                        f"{request.request_id}) is not settled with Cal.com yet; nothing was done, send "
                        "the same request again later",
                        CALCOM_UNAVAILABLE,
                    ),
                )

    def _answer(self, request_id: str, answer: Answer) -> None:
        if request_id in self._waiting:
            self._answers[request_id] = answer

    async def _apply(self, request: AppointmentChangeRequest) -> Answer:
        """One request from its decision to its outcome (see the module docstring)."""
        assert request.requested_at is not None
        try:
            begun = await self._begin(request)
        except FailureError as err:
            return _failure(
                f"the {request.describe()} could not be decided ({err}); nothing was done, send the same "
                "request again",
                NOT_DECIDED,
            )
        if begun.reused is not None:
            return _failure(begun.reused, REQUEST_ID_REUSED)
        if begun.step is BeginStep.ANSWERED:
            assert begun.outcome is not None
            return begun.outcome
        plan = begun.plan
        assert plan is not None
        booking: Booking | None = None
        if plan.calcom_booking_uid is not None:
            try:
                booking = await self._calcom(
                    request, plan.calcom_booking_uid, read_back_first=begun.step is BeginStep.RESUME
                )
            except ActivityError as err:
                refusal = refusal_of(err)
                if refusal is None:
                    self._unsettled.insert(0, request)
                    return _failure(
                        f"Cal.com did not complete the {request.change.value} of booking "
                        f"{plan.calcom_booking_uid} within {CALCOM_GIVE_UP_AFTER}; nothing was recorded "
                        "yet: the engine reads the booking back from Cal.com and settles this request "
                        "before any other change of the appointment; send the same request again later "
                        "for its outcome",
                        CALCOM_UNAVAILABLE,
                    )
                return await self._settle(
                    outcome(
                        request,
                        ChangeStatus.REFUSED,
                        request.requested_at,
                        plan=plan,
                        reason=f"Cal.com refused the {request.change.value}: {refusal.message}",
                        error_type=refusal.type,
                    )
                )
        return await self._finish(request, plan, booking)

    async def _begin(self, request: AppointmentChangeRequest) -> BegunChange:
        begun: BegunChange = await workflow.execute_local_activity(
            names.BEGIN_APPOINTMENT_CHANGE,
            BeginChange(request=request, workflow_id=workflow.info().workflow_id),
            result_type=BegunChange,
            start_to_close_timeout=DB_START_TO_CLOSE,
            retry_policy=PLAN_RETRY,
        )
        return begun

    async def _calcom(self, request: AppointmentChangeRequest, uid: str, *, read_back_first: bool) -> Booking:
        if request.change is ModificationType.CANCEL:
            return await calcom.cancel_booking(
                CancelBooking(uid=uid, reason=request.reason, read_back_first=read_back_first),
                give_up_after=CALCOM_GIVE_UP_AFTER,
            )
        assert request.new_start is not None
        return await calcom.reschedule_booking(
            RescheduleBooking(
                uid=uid, start=request.new_start, reason=request.reason, read_back_first=read_back_first
            ),
            give_up_after=CALCOM_GIVE_UP_AFTER,
        )

    async def _finish(
        self, request: AppointmentChangeRequest, plan: AppointmentChangePlan, booking: Booking | None
    ) -> Answer:
        assert request.requested_at is not None
        try:
            finished: FinishedChange = await workflow.execute_local_activity(
                names.FINISH_APPOINTMENT_CHANGE,
                FinishChange(
                    request=request, plan=plan, booking=booking, workflow_id=workflow.info().workflow_id
                ),
                result_type=FinishedChange,
                start_to_close_timeout=DB_START_TO_CLOSE,
                retry_policy=RECORD_RETRY,
            )
        except FailureError as err:
            refusal = refusal_of(err)
            if refusal is None or refusal.type != names.APPOINTMENT_NOT_FOUND:
                raise
            await undo_new_booking(request, booking)
            return await self._settle(
                outcome(
                    request,
                    ChangeStatus.NOT_FOUND,
                    request.requested_at,
                    reason=refusal.message,
                    error_type=refusal.type,
                )
            )
        if finished.recorded.conflict is not None:
            await undo_new_booking(request, booking)
        if finished.outcome.applied:
            await notify_event(
                change_event(request, plan, finished.recorded, workflow.now()),
                notify_change_workflow_id(request.company_id, request.request_id),
            )
        return finished.outcome

    async def _settle(self, answer: AppointmentChangeOutcome) -> AppointmentChangeOutcome:
        settled: AppointmentChangeOutcome = await workflow.execute_local_activity(
            names.SETTLE_APPOINTMENT_CHANGE,
            SettleChange(outcome=answer),
            result_type=AppointmentChangeOutcome,
            start_to_close_timeout=DB_START_TO_CLOSE,
            retry_policy=RECORD_RETRY,
        )
        return settled
