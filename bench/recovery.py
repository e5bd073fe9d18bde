"""Recovery after a restart: open callbacks whose SLA falls due while no worker runs, then a new worker.

Realistic, without moving any clock: the seeded company gets a `callback` policy with a short urgent SLA
(long enough for every callback to be created first), the open callbacks are created urgent, the worker
is stopped with SIGTERM, the bench waits until every breach is due, starts a new worker and measures
until every breach escalation is in PostgreSQL. Its log tells how many workflow tasks took over 5 s.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.worker_process import SLOW_TASK_MARKER, WorkerProcess
from models.callbacks import EscalationReason, Priority
from models.tables import CallbackEscalation, CallbackRequest
from store.db import create_engine, session_factory, transaction
from store.policies import set_policy

Sessions = async_sessionmaker[AsyncSession]
# Past the last due breach before the new worker starts: every step is due at once.
DUE_MARGIN_SECONDS = 2.0


@dataclass
class Recovery:
    due: int
    escalated_before: int
    seconds: float
    slow_tasks: int
    complete: bool


async def set_urgent_sla(database_url: str, company_id: int, seconds: float) -> None:
    """The company's urgent callbacks breach `seconds` after their creation (policy cache invalidated by
    the change notification, as in production)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with transaction(session_factory(engine)) as session:
            await set_policy(
                session,
                company_id=company_id,
                level="company",
                entity_id=company_id,
                policy_type="callback",
                config={"sla_hours": {Priority.URGENT.value: seconds / 3600}},
            )
    finally:
        await engine.dispose()


async def _breaches(sessions: Sessions) -> tuple[int, datetime | None]:
    """(breach escalations recorded, the latest SLA deadline of an urgent callback)."""
    async with sessions() as session:
        escalated = await session.scalar(
            select(func.count()).where(
                CallbackEscalation.escalation_reason == EscalationReason.SLA_BREACH.value
            )
        )
        latest = await session.scalar(
            select(func.max(CallbackRequest.expires_at)).where(
                CallbackRequest.priority == Priority.URGENT.value
            )
        )
    return int(escalated or 0), latest


async def wait_until_due(sessions: Sessions) -> int:
    """Sleep until every urgent callback's breach is due; the breaches already recorded by then."""
    escalated, latest = await _breaches(sessions)
    if latest is not None:
        wait = (latest - datetime.now(UTC)).total_seconds() + DUE_MARGIN_SECONDS
        if wait > 0:
            await asyncio.sleep(wait)
    escalated, _ = await _breaches(sessions)
    return escalated


async def measure_recovery(
    sessions: Sessions, worker: WorkerProcess, due: int, escalated_before: int, limit_seconds: float
) -> Recovery:
    """From the new worker's start until `due` breach escalations are recorded (or `limit_seconds`)."""
    complete = False
    while time.perf_counter() - worker.started < limit_seconds:
        escalated, _ = await _breaches(sessions)
        if escalated >= due:
            complete = True
            break
        await asyncio.sleep(0.25)
    seconds = time.perf_counter() - worker.started
    return Recovery(due, escalated_before, seconds, worker.count(SLOW_TASK_MARKER), complete)
