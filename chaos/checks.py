"""The invariants the scenarios share, read from PostgreSQL and Temporal.

* `until`: wait for a condition with a bound (a bound on waiting, never an assertion on speed).
* `audit_callbacks`: every callback has its row and its workflow, they agree (status, version,
  escalations), escalations are numbered 1..n once each, the audit trail is gap-free.
* `workflow_health`: every workflow of the lab's task queue is running or finished, and none that runs
  is stuck (a workflow task failing over and over, or an activity retrying for a long time) unless it
  carries a visible flag (a search attribute named `…Stuck…` that is set).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from chaos.lab import Lab
from chaos.scenario import Outcome
from models.callbacks import CallbackState
from models.tables import CallbackEscalation, CallbackEventRow, CallbackRequest
from workflows.callback import CallbackWorkflow

# A workflow task that failed this often in a row, or an activity on this attempt, is not progressing.
STUCK_TASK_ATTEMPTS = 3
STUCK_ACTIVITY_ATTEMPTS = 6


async def until(condition: Callable[[], Awaitable[bool]], seconds: float, interval: float = 0.25) -> bool:
    """Poll `condition` until it is true, for at most `seconds`. A condition that raises (the database
    is down just now) counts as false."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            if await condition():
                return True
        except Exception:
            pass
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(interval)


@dataclass
class CallbackAudit:
    callbacks: int = 0
    finished: int = 0
    escalations: int = 0
    lost: list[str] = field(default_factory=list)  # no row, no workflow, or not where it should be
    duplicated: list[str] = field(default_factory=list)  # an escalation or event written twice
    disagreeing: list[str] = field(default_factory=list)  # row and workflow state differ
    gaps: list[str] = field(default_factory=list)  # the audit trail skips a number

    def report(self, outcome: Outcome) -> None:
        outcome.figure("callbacks", self.callbacks)
        outcome.figure("finished", self.finished)
        outcome.figure("escalations", self.escalations)
        outcome.add_lost(len(self.lost), f"callbacks not where they should be ({'; '.join(self.lost[:3])})")
        outcome.add_duplicated(
            len(self.duplicated), f"callbacks with a step written twice ({'; '.join(self.duplicated[:3])})"
        )
        outcome.figure("disagree", len(self.disagreeing))
        outcome.check(not self.disagreeing, f"rows and workflows disagree: {'; '.join(self.disagreeing[:3])}")
        outcome.check(not self.gaps, f"audit trail gaps: {'; '.join(self.gaps[:3])}")


async def callback_state(
    lab: Lab, workflow_id: str
) -> tuple[WorkflowExecutionStatus | None, CallbackState | None]:
    """The workflow's status and its state: the result of a finished run, the query of a running one."""
    handle = lab.client.get_workflow_handle_for(CallbackWorkflow.run, workflow_id)
    try:
        status = (await handle.describe()).status
        if status == WorkflowExecutionStatus.COMPLETED:
            return status, await handle.result()
        if status == WorkflowExecutionStatus.RUNNING:
            return status, await handle.query(CallbackWorkflow.state)
        return status, None
    except RPCError:
        return None, None


async def audit_callbacks(
    lab: Lab,
    ids: Sequence[uuid.UUID],
    *,
    expect_status: str | None = None,
    expect_escalations: int | None = None,
) -> CallbackAudit:
    """Check every callback of `ids`; `expect_status` / `expect_escalations`: where each must have ended
    (a callback elsewhere counts as lost)."""
    audit = CallbackAudit(callbacks=len(ids))
    async with lab.sessions() as session:
        rows = {
            row.id: row
            for row in await session.scalars(select(CallbackRequest).where(CallbackRequest.id.in_(ids)))
        }
        escalations: dict[uuid.UUID, list[int]] = defaultdict(list)
        for callback_id, sequence in await session.execute(
            select(CallbackEscalation.callback_request_id, CallbackEscalation.sequence)
            .where(CallbackEscalation.callback_request_id.in_(ids))
            .order_by(CallbackEscalation.sequence)
        ):
            escalations[callback_id].append(sequence)
        events: dict[uuid.UUID, list[tuple[int, str, object]]] = defaultdict(list)
        for callback_id, seq, kind, payload in await session.execute(
            select(
                CallbackEventRow.callback_request_id,
                CallbackEventRow.seq,
                CallbackEventRow.type,
                CallbackEventRow.payload,
            )
            .where(CallbackEventRow.callback_request_id.in_(ids))
            .order_by(CallbackEventRow.seq)
        ):
            events[callback_id].append((seq, kind, payload))

    gate = asyncio.Semaphore(20)

    async def one(callback_id: uuid.UUID) -> None:
        row = rows.get(callback_id)
        if row is None:
            audit.lost.append(f"{callback_id}: no row")
            return
        async with gate:
            status, state = await callback_state(lab, row.workflow_id or f"callback-{callback_id}")
        numbers = escalations.get(callback_id, [])
        trail = events.get(callback_id, [])
        audit.escalations += len(numbers)
        if status == WorkflowExecutionStatus.COMPLETED:
            audit.finished += 1
        if state is None:
            audit.lost.append(f"{callback_id}: workflow {status.name if status else 'missing'}")
            return
        if expect_status is not None and state.status.value != expect_status:
            audit.lost.append(f"{callback_id}: {state.status.value}, not {expect_status}")
        if expect_escalations is not None and state.escalation_count < expect_escalations:
            audit.lost.append(f"{callback_id}: {state.escalation_count} of {expect_escalations} escalations")
        seen = (row.status, row.version, row.escalation_count)
        wanted = (state.status.value, state.version, state.escalation_count)
        if seen != wanted:
            audit.disagreeing.append(f"{callback_id}: row {seen} vs workflow {wanted}")
        escalated = [payload for _, kind, payload in trail if kind == "callback.escalated"]
        repeated = [n for n, c in Counter(_number(p) for p in escalated).items() if c > 1]
        if len(numbers) > state.escalation_count or len(escalated) > state.escalation_count or repeated:
            audit.duplicated.append(
                f"{callback_id}: {len(numbers)} rows, {len(escalated)} events, "
                f"{state.escalation_count} escalations"
            )
        elif numbers != list(range(1, state.escalation_count + 1)):
            audit.disagreeing.append(f"{callback_id}: escalation rows {numbers}")
        if [seq for seq, _, _ in trail] != list(range(1, len(trail) + 1)):
            audit.gaps.append(f"{callback_id}: seqs {[seq for seq, _, _ in trail][:12]}")

    await asyncio.gather(*(one(callback_id) for callback_id in ids))
    return audit


def _number(payload: object) -> object:
    return payload.get("number") if isinstance(payload, dict) else None


@dataclass
class WorkflowHealth:
    running: int = 0
    finished: int = 0
    ended_badly: list[str] = field(default_factory=list)  # failed, terminated, timed out, cancelled
    stuck: list[str] = field(default_factory=list)  # running, not progressing, not flagged
    flagged: int = 0

    def report(self, outcome: Outcome) -> None:
        """A failed run is a defined end (an appointment change that gave up says why); a callback
        whose workflow failed is lost, which `audit_callbacks` counts."""
        outcome.figure("workflows", self.running + self.finished + len(self.ended_badly))
        outcome.figure("stuck", len(self.stuck))
        outcome.check(not self.stuck, f"stuck without a flag: {'; '.join(self.stuck[:3])}")


def _flagged(attributes: object) -> bool:
    """A search attribute whose name says "stuck" is set: the workflow shows that it cannot go on."""
    items = getattr(attributes, "items", None)
    return callable(items) and any("stuck" in str(name).lower() and any(v) for name, v in items())


async def workflow_health(lab: Lab) -> WorkflowHealth:
    """Every workflow of the lab's task queue (as Temporal's visibility lists it)."""
    health = WorkflowHealth()
    running: list[str] = []
    async for execution in lab.client.list_workflows(f'TaskQueue = "{lab.task_queue}"'):
        status = execution.status
        if status == WorkflowExecutionStatus.RUNNING:
            running.append(execution.id)
        elif status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW):
            health.finished += 1
        else:
            health.ended_badly.append(f"{execution.id} {status.name if status else '?'}")
    health.running = len(running)
    gate = asyncio.Semaphore(20)

    async def inspect(workflow_id: str) -> None:
        async with gate:
            try:
                described = await lab.client.get_workflow_handle(workflow_id).describe()
            except RPCError:
                return
        raw = described.raw_description
        task_attempt = raw.pending_workflow_task.attempt if raw.HasField("pending_workflow_task") else 0
        activity_attempt = max((a.attempt for a in raw.pending_activities), default=0)
        if task_attempt < STUCK_TASK_ATTEMPTS and activity_attempt < STUCK_ACTIVITY_ATTEMPTS:
            return
        if _flagged(described.search_attributes):
            health.flagged += 1
        else:
            health.stuck.append(
                f"{workflow_id} (task attempt {task_attempt}, activity attempt {activity_attempt})"
            )

    await asyncio.gather(*(inspect(workflow_id) for workflow_id in running))
    return health
