"""Activities of the periodic jobs: the reconciliation sweep and the data retention job.

The read model (`callback_requests`) and the workflows should always agree: every transition is written
before the workflow moves on, and a row is never older than its workflow. They stop agreeing when rows
arrive from elsewhere (an import from the old system), when a database is restored from a backup, or when
an operator terminates a workflow. The sweep finds both directions and repairs what it can:

- an open row without a running workflow gets one, started from the row's own state (so the SLA clock
  keeps the row's `created_at` / `expires_at`, and the version guard continues from the row's version);
- a row older than its workflow's state (a lower `version`) is written again from that state.

Everything here is idempotent: starting uses the row's workflow id with "fail if running", so two sweeps
at once start one workflow; writing uses the same version-guarded upsert as the workflow's own writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities import names
from activities.row_states import RowStates
from models import search_attributes
from models.callbacks import (
    GENERATION,
    CallbackSettings,
    CallbackState,
    CallbackWorkflowInput,
    callback_id_of_workflow,
    mask_phone,
    stored_callback_workflow_id,
)
from models.operations import RetentionReport, RetentionRequest, SweepPage, SweepReport
from models.tables import CallbackRequest
from store import callbacks as store
from store import operations as rows
from store.db import transaction
from store.policies import PolicyResolver
from telemetry import metrics

log = logging.getLogger(__name__)

# A closed run of these kinds did not end the callback: the row is the truth, the callback goes on.
RESTARTABLE = frozenset(
    {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
        WorkflowExecutionStatus.CANCELED,
    }
)
# A query waits for a worker of the workflow's queue; one that cannot be answered must not stall the sweep.
QUERY_TIMEOUT = timedelta(seconds=20)


def running_callbacks(task_queue: str) -> str:
    """The visibility query of this fleet's running callbacks (other queues have other workers and rows)."""
    return (
        f"WorkflowType = '{names.CALLBACK_WORKFLOW}' AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = '{task_queue}'"
    )


LOOKUP_CHUNK = 500
# Running workflows whose row is missing or closed are queried at most this many times per run (after a
# restore there could be thousands); the rest wait for the next run (`deferred`).
UNLISTED_QUERIES_PER_RUN = 1000
# The `state` query answers None while the workflow is still creating the callback.
MAYBE_STATE = cast(type, CallbackState | None)


class OperationsActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        defaults: CallbackSettings,
        policies: PolicyResolver | None = None,
    ) -> None:
        self._sessions = sessions
        self._rows = RowStates(sessions, defaults, policies)

    # --- reconciliation: rows → workflows --------------------------------------------------------

    @activity.defn(name=names.RECONCILE_CALLBACKS)
    async def reconcile_callbacks(self, page: SweepPage) -> SweepReport:
        """One page of open rows (keyset by id): each gets a running workflow and is no older than it."""
        async with self._sessions() as session:
            found = await rows.open_callbacks(session, page.after, page.limit)
        report = SweepReport(
            checked=len(found), next_after=found[-1].id if len(found) == page.limit else None
        )
        client = activity.client()
        for row in found:
            activity.heartbeat(str(row.id))
            try:
                await self._reconcile_row(client, row, report, page.settled_before)
            except Exception as exc:
                # One broken workflow or row (a query that fails, a state that does not validate) must
                # not stop the sweep at this row, run after run.
                _failed(report, row.id, exc)
        _count(report)
        return report

    async def _reconcile_row(
        self, client: Client, row: CallbackRequest, report: SweepReport, settled_before: datetime | None
    ) -> None:
        # The row names its workflow (`callback-<id>` for rows from before tenant workflow ids).
        workflow_id = stored_callback_workflow_id(row.id, row.workflow_id)
        handle = client.get_workflow_handle(workflow_id, result_type=CallbackState)
        try:
            status = (await handle.describe()).status
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            status = None
        if status is None or status in RESTARTABLE:
            await self._start_from_row(client, row, report, restart=status is not None)
        elif status == WorkflowExecutionStatus.RUNNING:
            if settled_before is not None and row.updated_at >= settled_before:
                return  # its workflow wrote it moments ago: no query (a worker would have to answer it)
            state = await handle.query(
                names.CALLBACK_STATE_QUERY, result_type=MAYBE_STATE, rpc_timeout=QUERY_TIMEOUT
            )
            if state is not None and state.version > row.version:
                await self._persist(state, report, workflow_id)
        elif status == WorkflowExecutionStatus.COMPLETED:
            final = await handle.result()
            if final.version > row.version:
                await self._persist(final, report, workflow_id)
            else:
                # Cannot happen through the engine (the final state is written before the run ends).
                _failed(report, row.id, f"workflow completed at version {final.version}, row open")

    async def _start_from_row(
        self, client: Client, row: CallbackRequest, report: SweepReport, *, restart: bool
    ) -> None:
        state = await self.state_from_row(row)
        # Always under the company's id (a lost `callback-<id>` workflow comes back as
        # `c<company>.callback-<id>`), and the row learns it so lookups by callback id find it.
        try:
            await client.start_workflow(
                names.CALLBACK_WORKFLOW,
                CallbackWorkflowInput(
                    callback_id=row.id, request=state.request, carried_state=state, generation=GENERATION
                ),
                id=state.workflow_id,
                task_queue=activity.info().task_queue,
                # "Fail if running" is what makes two concurrent sweeps start one workflow, not two.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=search_attributes.typed_for(state),
                memo={
                    "customer_name": state.request.customer_name,
                    "phone": mask_phone(state.request.phone_number),
                },
                static_summary=f"Callback for {state.request.customer_name} ({state.priority.value}), "
                f"{'restarted' if restart else 'started'} by the reconciliation sweep",
            )
        except WorkflowAlreadyStartedError:
            report.already_started += 1
        else:
            report.started += 1
            log.info("started %s from its row (version %d, %s)", state.workflow_id, row.version, row.status)
        if row.workflow_id != state.workflow_id:
            async with transaction(self._sessions) as session:
                await rows.set_workflow_id(session, row.id, state.workflow_id)

    async def state_from_row(self, row: CallbackRequest) -> CallbackState:
        return await self._rows.state_from_row(row)

    async def _persist(self, state: CallbackState, report: SweepReport, workflow_id: str) -> None:
        """Write the workflow's state again: the row and its escalations. The audit events of the missing
        steps are gone with the lost writes and cannot be rebuilt from the state."""
        async with transaction(self._sessions) as session:
            written = await store.upsert_callback(session, state, workflow_id=workflow_id)
            for escalation in state.escalations:
                await store.insert_escalation(session, state, escalation)
        if written:
            report.repersisted += 1
            log.info("rewrote the row of %s from its workflow (version %d)", workflow_id, state.version)

    # --- reconciliation: workflows → rows --------------------------------------------------------

    @activity.defn(name=names.RECONCILE_UNLISTED_WORKFLOWS)
    async def reconcile_unlisted_workflows(self) -> SweepReport:
        """Running callback workflows whose row is missing or not open (the open rows are the other
        activity's): written again from their state when the row is older. Needs a visibility store
        that lists workflows; without one (the time-skipping test server) this part is reported as
        skipped."""
        report = SweepReport()
        client = activity.client()
        ids: list[UUID] = []
        workflow_ids: dict[UUID, str] = {}
        try:
            async for execution in client.list_workflows(running_callbacks(activity.info().task_queue)):
                callback_id = callback_id_of_workflow(execution.id)
                if callback_id is not None:
                    ids.append(callback_id)
                    workflow_ids[callback_id] = execution.id
        except RPCError as err:
            if err.status != RPCStatusCode.UNIMPLEMENTED:
                raise
            report.problems.append("visibility cannot list workflows here: running workflows not checked")
            return report
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            activity.heartbeat(start)
            async with self._sessions() as session:
                open_rows, versions = await rows.open_ids_and_versions(session, chunk)
            for callback_id in chunk:
                if callback_id in open_rows:
                    continue
                if report.checked >= UNLISTED_QUERIES_PER_RUN:
                    report.deferred += 1
                    continue
                report.checked += 1
                try:
                    state = await client.get_workflow_handle(workflow_ids[callback_id]).query(
                        names.CALLBACK_STATE_QUERY, result_type=MAYBE_STATE, rpc_timeout=QUERY_TIMEOUT
                    )
                    if state is not None and state.version > versions.get(callback_id, -1):
                        await self._persist(state, report, workflow_ids[callback_id])
                except Exception as exc:
                    _failed(report, callback_id, exc)
        _count(report)
        return report

    # --- retention -------------------------------------------------------------------------------

    @activity.defn(name=names.PURGE_SOFT_DELETED)
    async def purge_soft_deleted(self, request: RetentionRequest) -> RetentionReport:
        """Delete rows soft-deleted before the cutoff, in batches (short transactions, short locks).
        Callback rows go only once closed (a deleted open callback is cancelled first, so this is a
        guard): a running workflow would write its row back. Their escalations and events go with them
        (ON DELETE CASCADE)."""
        report = RetentionReport(cutoff=request.cutoff)
        for table in rows.PURGEABLE:
            purged = 0
            while True:
                async with transaction(self._sessions) as session:
                    deleted = await rows.purge_soft_deleted(
                        session, table, request.cutoff, request.batch_size
                    )
                purged += deleted
                activity.heartbeat(table.__tablename__, purged)
                if deleted < request.batch_size:
                    break
            report.purged[table.__tablename__] = purged
            if purged:
                metrics.RETENTION_PURGED.labels(table.__tablename__).inc(purged)
                log.info("purged %d soft-deleted rows of %s", purged, table.__tablename__)
        return report

    def all(self) -> list[Callable[..., Any]]:
        return [self.reconcile_callbacks, self.reconcile_unlisted_workflows, self.purge_soft_deleted]


def _why(reason: object) -> str:
    """What went wrong, in words without personal data: an exception's text may quote the row or the
    workflow's state (a validation error echoes the customer's name), so only its kind is kept."""
    if isinstance(reason, RPCError):
        return f"RPCError {reason.status.name if reason.status is not None else ''}".strip()
    if isinstance(reason, BaseException):
        return type(reason).__name__
    return str(reason)


def _failed(report: SweepReport, callback_id: UUID, reason: object) -> None:
    report.failed += 1
    why = _why(reason)
    if len(report.problems) < 50:
        report.problems.append(f"{callback_id}: {why}")
    log.warning("sweep could not repair callback-%s: %s", callback_id, why)


def _count(report: SweepReport) -> None:
    for kind in ("started", "repersisted", "failed"):
        value = getattr(report, kind)
        if value:
            metrics.SCHEDULED_REPAIRS.labels(kind).inc(value)
