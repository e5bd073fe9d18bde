"""AppointmentClient: cancel or reschedule an appointment through `AppointmentChangeWorkflow`.

Each call waits for the outcome. The request id is the idempotency key: the workflow id is derived from it,
a request still running is joined rather than started twice, and a finished one answers with its stored
outcome (a failed one, e.g. Cal.com down for longer than the retry budget, runs again).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from models.appointments import (
    Actor,
    AppointmentChangeOutcome,
    AppointmentChangeRequest,
    change_workflow_id,
)
from models.policies import ModificationType
from workflows.appointment_change import AppointmentChangeWorkflow

REQUEST_ID_REUSED = "RequestIdReused"


class AppointmentChangeError(Exception):
    """The change did not complete (it was neither applied nor refused); `kind` names the failure, e.g.
    `CalcomUnavailable`. Resubmitting the same request id is safe."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _failure(err: WorkflowFailureError) -> AppointmentChangeError:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return AppointmentChangeError(cause.message, cause.type or "ApplicationError")
    return AppointmentChangeError(str(cause or err), type(cause).__name__ if cause else "WorkflowFailed")


class AppointmentClient:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    def handle(
        self, company_id: int, request_id: str
    ) -> WorkflowHandle[AppointmentChangeWorkflow, AppointmentChangeOutcome]:
        return self._client.get_workflow_handle_for(
            AppointmentChangeWorkflow.run, change_workflow_id(company_id, request_id)
        )

    async def cancel(
        self,
        company_id: int,
        appointment_id: int,
        *,
        request_id: str | None = None,
        reason: str | None = None,
        modified_by: Actor | None = None,
    ) -> AppointmentChangeOutcome:
        """Without a `request_id` the call is not idempotent: pass one wherever a retry is possible."""
        return await self.submit(
            AppointmentChangeRequest(
                request_id=request_id or uuid.uuid4().hex,
                company_id=company_id,
                appointment_id=appointment_id,
                change=ModificationType.CANCEL,
                reason=reason,
                modified_by=modified_by or Actor(),
            )
        )

    async def reschedule(
        self,
        company_id: int,
        appointment_id: int,
        new_start: datetime,
        *,
        request_id: str | None = None,
        reason: str | None = None,
        modified_by: Actor | None = None,
    ) -> AppointmentChangeOutcome:
        """Move the appointment to `new_start` (timezone-aware); it keeps its length."""
        return await self.submit(
            AppointmentChangeRequest(
                request_id=request_id or uuid.uuid4().hex,
                company_id=company_id,
                appointment_id=appointment_id,
                change=ModificationType.RESCHEDULE,
                new_start=new_start,
                reason=reason,
                modified_by=modified_by or Actor(),
            )
        )

    async def submit(self, request: AppointmentChangeRequest) -> AppointmentChangeOutcome:
        """Run the change (or join / answer from the run of the same request id) and return its outcome."""
        try:
            handle = await self._client.start_workflow(
                AppointmentChangeWorkflow.run,
                request,
                id=request.workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                static_summary=(
                    f"{request.change.value.capitalize()} appointment {request.appointment_id} "
                    f"(company {request.company_id})"
                ),
                task_timeout=timedelta(seconds=10),
            )
        except WorkflowAlreadyStartedError:
            handle = self.handle(request.company_id, request.request_id)
        try:
            outcome = await handle.result()
        except WorkflowFailureError as err:
            raise _failure(err) from err
        if not outcome.answers(request):
            raise AppointmentChangeError(
                f"request id {request.request_id!r} was already used for the {outcome.change.value} of "
                f"appointment {outcome.appointment_id}",
                REQUEST_ID_REUSED,
            )
        return outcome
