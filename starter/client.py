"""CallbackClient: the typed Python client the API, the CLI and other services use.

`create` is Update-With-Start: the call returns the stored callback (row written by the workflow, staff
assigned), and the same idempotency key always lands on the same workflow id, so a retried request never
starts a second callback. The API writes a new callback's first step itself and starts its workflow from
that state (`start_opened`, starter/opening.py).

A callback's workflow id is `c<company>.callback-<id>` (models/callbacks.py), so the payload codec
encrypts it with the company's key. Callbacks started before that run as `callback-<id>`: every method
after creation takes the workflow id, which the caller reads from the callback's row (`workflow_id`) or
from a state (`state.workflow_id`). A staff action given an idempotency key runs as an Update whose
id derives from it, so a retried action is applied once (Temporal answers a repeated Update id with the
stored outcome, also once the workflow has finished). Every call has the client's deadline
(starter/deadlines.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models import search_attributes
from models.callbacks import (
    GENERATION,
    CallbackState,
    CallbackWorkflowInput,
    CreatedCallback,
    ErasePersonalData,
    NewCallback,
    PreparedCallback,
    StaffCommand,
    StaffDeactivated,
    callback_workflow_id,
    mask_phone,
)
from models.stuck import RETRY_STUCK_SIGNAL, STUCK_QUERY, StuckMark
from models.update_keys import KEY_REUSED, KEY_REUSED_MESSAGE, keyed_update, keyed_update_id
from rules.first_step import attributes_at_start
from rules.staff_actions import spec_of
from rules.transitions import TransitionRefused, check_allowed
from starter.deadlines import bounded, rpc_timeout
from workflows.callback import CallbackWorkflow

# Idempotency keys map to callback ids inside this namespace (uuid5), per company.
IDEMPOTENCY_NAMESPACE = UUID("5f0c6d2e-7d0b-4c43-9a59-6a3c1b2d9e10")

__all__ = ["CallbackClient", "CallbackError", "StaffCommand", "callback_id_for"]

T = TypeVar("T")
# The `stuck` query answers None while all is well.
MAYBE_STUCK = cast(type, StuckMark | None)
MAYBE_TEXT = cast(type, str | None)


class CallbackError(Exception):
    """An action the engine refused. `kind` is the refusal type (e.g. `TransitionRefused`)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def callback_id_for(company_id: int, idempotency_key: str | None) -> UUID:
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{company_id}:{idempotency_key}")


NOT_READY_RETRIES = 5
NOT_READY_BACKOFF_SECONDS = 0.05


def _workflow_not_ready(err: RPCError) -> bool:
    """The server's "Unable to perform workflow execution update due to unexpected workflow task
    failure" (FAILED_PRECONDITION with a WorkflowNotReadyFailure): the Update was not admitted."""
    if err.status != RPCStatusCode.FAILED_PRECONDITION or err.grpc_status is None:
        return False
    return any(detail.type_url.endswith("WorkflowNotReadyFailure") for detail in err.grpc_status.details)


STOPPED_HOW = {
    "TERMINATED": "was terminated",
    "CANCELED": "was cancelled",
    "TIMED_OUT": "timed out",
    "FAILED": "failed",
}


def _refusal(err: WorkflowUpdateFailedError) -> CallbackError:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return CallbackError(cause.message, cause.type or "ApplicationError")
    return CallbackError(str(cause or err), type(cause).__name__ if cause else "UpdateFailed")


def _shown(request: NewCallback) -> dict[str, Any]:
    """What a callback's start shows besides its search attributes. Memo and summary are payloads: the
    codec encrypts them with the workflow's company key, so the UI shows them only to those who read
    through the codec server (docs/operations.md)."""
    return {
        "memo": {"customer_name": request.customer_name, "phone": mask_phone(request.phone_number)},
        "static_summary": f"Callback for {request.customer_name} ({request.priority.value})",
        "task_timeout": timedelta(seconds=10),
    }


class CallbackClient:
    def __init__(self, client: Client, task_queue: str, timeout: float | None = None) -> None:
        """`timeout`: the deadline of each call in seconds (None: wait as long as the connection does)."""
        self._client = client
        self._task_queue = task_queue
        self._timeout = timeout

    async def _bounded(self, call: Awaitable[T]) -> T:
        return await bounded(self._client, self._timeout, call)

    @property
    def temporal(self) -> Client:
        return self._client

    def handle(self, workflow_id: str) -> WorkflowHandle[CallbackWorkflow, CallbackState]:
        return self._client.get_workflow_handle_for(CallbackWorkflow.run, workflow_id)

    async def create(
        self,
        request: NewCallback,
        idempotency_key: str | None = None,
        *,
        workflow_id: str | None = None,
        stored: bool = False,
        prepared: PreparedCallback | None = None,
    ) -> CreatedCallback:
        """Start the callback's workflow and return it once stored; the same key returns the same callback.
        `workflow_id`: the stored workflow of the key's callback when it already has a row (a retry of a
        callback started before tenant workflow ids lands on its `callback-<id>` workflow).

        `stored`: the caller found the key's callback row already written. Its workflow is then never
        started again: a fresh run would begin at version 0 beneath the stored row (its writes skipped,
        its events dropped). If that workflow no longer runs although the callback is open (an operator
        terminated it), the call is refused with `CallbackStopped`, which says how to restore it.

        `prepared`: the request's preparation, read just before (activities/preparation.py): the workflow
        then decides its first step at once instead of preparing it itself."""
        callback_id = callback_id_for(request.company_id, idempotency_key)
        workflow_id = workflow_id or callback_workflow_id(request.company_id, callback_id)
        token = uuid.uuid4().hex
        operation = WithStartWorkflowOperation(
            CallbackWorkflow.run,
            CallbackWorkflowInput(
                callback_id=callback_id,
                request=request,
                request_token=token,
                generation=GENERATION,
                prepared=prepared,
            ),
            id=workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A finished callback is never started again for the same key; a failed creation may be (it
            # stored nothing), a stored callback whose workflow was stopped may not.
            id_reuse_policy=(
                WorkflowIDReusePolicy.REJECT_DUPLICATE
                if stored
                else WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
            ),
            search_attributes=attributes_at_start(callback_id, request, prepared),
            **_shown(request),
        )
        try:
            return await self._bounded(
                self._client.execute_update_with_start_workflow(
                    CallbackWorkflow.created,
                    token,
                    start_workflow_operation=operation,
                    rpc_timeout=rpc_timeout(self._timeout),
                )
            )
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from err
        except (WorkflowAlreadyStartedError, RPCError) as err:
            # The key's callback already finished (the id may not be reused): answer with its final state.
            if isinstance(err, RPCError) and err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
            state = await self._final_state(workflow_id)
            if state is None:
                raise
            if not state.status.is_terminal:
                raise await self._stopped(workflow_id, state) from err
            return CreatedCallback(state=state, created=False)

    async def start_opened(self, state: CallbackState, *, suggest_slots: bool = False) -> None:
        """Start the workflow of a callback whose first step the caller wrote (starter/opening.py): the run
        begins from that stored state. Joins the run already there (the reconciliation sweep may have
        started it from the row first, with the same state). `suggest_slots`: the service is bookable."""
        request = state.request
        await self._bounded(
            self._client.start_workflow(
                CallbackWorkflow.run,
                CallbackWorkflowInput(
                    callback_id=state.id,
                    request=request,
                    carried_state=state,
                    generation=GENERATION,
                    suggest_slots=suggest_slots,
                ),
                id=state.workflow_id,
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                search_attributes=search_attributes.typed_for(state),
                rpc_timeout=rpc_timeout(self._timeout),
                **_shown(request),
            )
        )

    async def act(
        self, workflow_id: str, command: StaffCommand, idempotency_key: str | None = None
    ) -> CallbackState:
        """Run one staff action as an Update: returns the new state once it is in PostgreSQL.

        The command says which action it is (`Assign(...)` is the Update `assign`, rules/staff_actions.py),
        so a new action needs nothing new here. With `idempotency_key` the Update's id derives from it and
        from the request (models/update_keys.py): a retry gets the first call's outcome and changes nothing;
        another request under the same key is refused (`IdempotencyKeyReused`).
        """
        action = spec_of(command).action
        update_id = keyed_update_id(action.value, idempotency_key, command) if idempotency_key else None
        try:
            return await self._update(workflow_id, action.value, command, update_id)
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from err
        except RPCError as err:
            # A finished workflow takes no Updates; answer like the workflow would have: name the state.
            if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise
            finished = await self._final_state(workflow_id)
            if finished is None:
                raise CallbackError(f"no callback workflow {workflow_id}", "NotFound") from err
            if idempotency_key and await self._key_reused(workflow_id, update_id):
                raise CallbackError(KEY_REUSED_MESSAGE, KEY_REUSED) from err
            try:
                check_allowed(action, finished.status)
            except TransitionRefused as refused:
                raise CallbackError(str(refused), "TransitionRefused") from err
            raise await self._stopped(workflow_id, finished) from err

    async def _key_reused(self, workflow_id: str, update_id: str | None) -> bool:
        """Whether the key of `update_id` came with another request to this (finished) workflow: a retry
        of the same request would have been answered with its outcome instead of landing here."""
        keyed = keyed_update(update_id)
        if keyed is None:
            return False
        first: str | None = await self._bounded(
            self.handle(workflow_id).query(
                "update_key", keyed.key, result_type=MAYBE_TEXT, rpc_timeout=rpc_timeout(self._timeout)
            )
        )
        return first is not None and first != keyed.request

    async def _stopped(self, workflow_id: str, state: CallbackState) -> CallbackError:
        """The refusal for an open callback whose workflow no longer runs (terminated by an operator, or
        failed): nothing drives it, and starting it over would lose its history, so say how to restore it."""
        how = "was stopped"
        with contextlib.suppress(RPCError):
            described = await self._bounded(
                self.handle(workflow_id).describe(rpc_timeout=rpc_timeout(self._timeout))
            )
            if described.status is not None:
                how = STOPPED_HOW.get(described.status.name, how)
        return CallbackError(
            f"callback {state.id} is {state.status.value}, but its workflow {how} and no longer runs; "
            f"an operator can restore it with `temporal workflow reset --workflow-id {workflow_id} "
            "--type LastWorkflowTask --reason restore` (it carries on where it stopped), or delete it",
            "CallbackStopped",
        )

    async def run_status(self, workflow_id: str) -> tuple[WorkflowExecutionStatus | None, bool]:
        """The status of the id's latest run (None: no such workflow) and whether it ever completed a
        workflow task (a run stopped before that never held more than the state it was started with)."""
        handle = self.handle(workflow_id)
        try:
            described = await self._bounded(handle.describe(rpc_timeout=rpc_timeout(self._timeout)))
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None, False
            raise
        async for event in handle.fetch_history_events(rpc_timeout=rpc_timeout(self._timeout)):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                return described.status, True
        return described.status, False

    async def _final_state(self, workflow_id: str) -> CallbackState | None:
        try:
            return await self.state(workflow_id)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def erase_personal_data(self, workflow_id: str, actor: str = "system") -> CallbackState:
        """Blank the customer's personal data in the running callback (its state and its row); the
        callback goes on. Raises `RPCError` NOT_FOUND when the workflow is no longer running."""
        try:
            return await self._update(workflow_id, "erase_personal_data", ErasePersonalData(actor=actor))
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from err

    async def _update(
        self, workflow_id: str, name: str, argument: object, update_id: str | None = None
    ) -> CallbackState:
        """Execute an Update within the client's deadline; one the server turns away because the
        workflow's task failed just then (e.g. it raced a new event: UnhandledCommand) was never admitted
        and is sent again."""
        for attempt in range(NOT_READY_RETRIES + 1):
            try:
                state: CallbackState = await self._bounded(
                    self.handle(workflow_id).execute_update(
                        name,
                        argument,
                        id=update_id,
                        result_type=CallbackState,
                        rpc_timeout=rpc_timeout(self._timeout),
                    )
                )
                return state
            except RPCError as err:
                if attempt == NOT_READY_RETRIES or not _workflow_not_ready(err):
                    raise
                await asyncio.sleep(NOT_READY_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")

    async def send(self, workflow_id: str, command: StaffCommand) -> None:
        """The same action as a Signal: fire and forget (a refusal is only logged by the workflow)."""
        await self._bounded(
            self.handle(workflow_id).signal(
                spec_of(command).action.value, command, rpc_timeout=rpc_timeout(self._timeout)
            )
        )

    async def staff_deactivated(self, workflow_id: str, staff_id: UUID, actor: str = "system") -> bool:
        """Tell the callback's workflow that `staff_id` left (Signal `staff_deactivated`): if the callback
        is open and theirs, the workflow reassigns it. False when the workflow has already finished."""
        try:
            await self._bounded(
                self.handle(workflow_id).signal(
                    CallbackWorkflow.staff_deactivated,
                    StaffDeactivated(staff_id=staff_id, actor=actor),
                    rpc_timeout=rpc_timeout(self._timeout),
                )
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def state(self, workflow_id: str) -> CallbackState | None:
        return await self._bounded(
            self.handle(workflow_id).query(CallbackWorkflow.state, rpc_timeout=rpc_timeout(self._timeout))
        )

    async def stuck(self, workflow_id: str) -> StuckMark | None:
        """The database step the callback's workflow cannot get through (None: it is not stuck)."""
        mark: StuckMark | None = await self._bounded(
            self.handle(workflow_id).query(
                STUCK_QUERY, result_type=MAYBE_STUCK, rpc_timeout=rpc_timeout(self._timeout)
            )
        )
        return mark

    async def retry_stuck(self, workflow_id: str) -> None:
        """Have a stuck callback try its failing step again now (also after it gave up)."""
        await self._bounded(
            self.handle(workflow_id).signal(RETRY_STUCK_SIGNAL, rpc_timeout=rpc_timeout(self._timeout))
        )
