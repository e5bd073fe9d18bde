"""AppointmentClient: cancel or reschedule an appointment through its `AppointmentWorkflow`.

Every request is the Update `change` of the appointment's one workflow (`c<company>.appointment-<id>`),
sent with Update-With-Start: the workflow is started when it is not running (it ends on its own after a
while without requests), and the requests of one appointment are applied one at a time, in order.

The request id is the idempotency key: the workflow joins a request still being applied, answers a settled
one with its stored outcome, and refuses the id reused for a different change (`RequestIdReused`). Each
request carries `requested_at`, taken here when the request is made: the policy is decided at that
instant, so a retry gets the same decision and fee. Every call has the client's deadline
(starter/deadlines.py): a Temporal that does not answer in time, refuses for now or cannot be reached
raises `TemporalTimeout`, `TemporalBusy` or `TemporalUnavailable`, as for the callbacks.

Requests of runs started before the per-appointment workflow (`AppointmentChangeWorkflow`, one per
request) finish there; `handle` reaches them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.appointment_workflow import AppointmentWorkflowInput, appointment_workflow_id
from models.appointments import (
    Actor,
    AppointmentChangeOutcome,
    AppointmentChangeRequest,
    change_workflow_id,
)
from models.policies import ModificationType
from starter.deadlines import bounded, rpc_timeout
from workflows.appointment import REQUEST_ID_REUSED, AppointmentWorkflow
from workflows.appointment_change import AppointmentChangeWorkflow

__all__ = ["REQUEST_ID_REUSED", "AppointmentChangeError", "AppointmentClient"]

T = TypeVar("T")
# An Update that reached the workflow just as it ended (idle) is turned away: it is sent again, which
# starts the next run.
ENDED_RETRIES = 3
ENDED_BACKOFF_SECONDS = 0.05


class AppointmentChangeError(Exception):
    """The change did not complete (it was neither applied nor refused); `kind` names the failure, e.g.
    `CalcomUnavailable`, or `RequestIdReused` for a request id used for a different change. Resubmitting
    the same request (same id, same body) is safe."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _refusal(err: WorkflowUpdateFailedError) -> AppointmentChangeError:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return AppointmentChangeError(cause.message, cause.type or "ApplicationError")
    return AppointmentChangeError(str(cause or err), type(cause).__name__ if cause else "UpdateFailed")


def _workflow_ended(err: RPCError) -> bool:
    return err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)


class AppointmentClient:
    def __init__(self, client: Client, task_queue: str, timeout: float | None = None) -> None:
        """`timeout`: the deadline of each call in seconds (None: wait as long as the connection does)."""
        self._client = client
        self._task_queue = task_queue
        self._timeout = timeout

    async def _bounded(self, call: Awaitable[T]) -> T:
        return await bounded(self._client, self._timeout, call)

    def handle(
        self, company_id: int, request_id: str
    ) -> WorkflowHandle[AppointmentChangeWorkflow, AppointmentChangeOutcome]:
        """The run of a request made before the per-appointment workflow (one run per request)."""
        return self._client.get_workflow_handle_for(
            AppointmentChangeWorkflow.run, change_workflow_id(company_id, request_id)
        )

    def appointment_handle(
        self, company_id: int, appointment_id: int
    ) -> WorkflowHandle[AppointmentWorkflow, None]:
        return self._client.get_workflow_handle_for(
            AppointmentWorkflow.run, appointment_workflow_id(company_id, appointment_id)
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
                requested_at=datetime.now(UTC),
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
                requested_at=datetime.now(UTC),
            )
        )

    async def submit(self, request: AppointmentChangeRequest) -> AppointmentChangeOutcome:
        """Apply the change on the appointment's workflow (or join / answer the same request id) and
        return its outcome. A request without `requested_at` is dated now."""
        if request.requested_at is None:
            request = request.model_copy(update={"requested_at": datetime.now(UTC)})
        for attempt in range(ENDED_RETRIES + 1):
            try:
                outcome = await self._bounded(self._update_with_start(request))
                break
            except WorkflowUpdateFailedError as err:
                raise _refusal(err) from err
            except RPCError as err:
                if attempt == ENDED_RETRIES or not _workflow_ended(err):
                    raise
                await asyncio.sleep(ENDED_BACKOFF_SECONDS * 2**attempt)
        if not outcome.answers(request):
            raise AppointmentChangeError(
                f"request id {request.request_id!r} was already used for the {outcome.change.value} of "
                f"appointment {outcome.appointment_id}",
                REQUEST_ID_REUSED,
            )
        return outcome

    async def _update_with_start(self, request: AppointmentChangeRequest) -> AppointmentChangeOutcome:
        operation = WithStartWorkflowOperation(
            AppointmentWorkflow.run,
            AppointmentWorkflowInput(company_id=request.company_id, appointment_id=request.appointment_id),
            id=appointment_workflow_id(request.company_id, request.appointment_id),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # The workflow ends when idle: the next request starts the next run.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Changes of appointment {request.appointment_id} (company {request.company_id})",
            task_timeout=timedelta(seconds=10),
        )
        return await self._client.execute_update_with_start_workflow(
            AppointmentWorkflow.change,
            request,
            start_workflow_operation=operation,
            rpc_timeout=rpc_timeout(self._timeout),
        )
