"""A real worker process killed with SIGKILL, twice: while callbacks wait on their SLA, and in the middle
of their escalations. A new worker finishes them all: none lost, no escalation or event written twice.

Runs on the Temporal dev server with real time, so the SLA is a few seconds (a `callback` policy)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from config import Settings
from devstack.processes import child_process, engine_env, worker_command
from models.callbacks import CallbackStatus, Complete
from models.tables import CallbackEscalation, CallbackEventRow, CallbackRequest
from starter.client import CallbackClient
from tests.callback_harness import new_callback
from tests.factories import add_staff, make_tenant, set_callback_policy
from worker import EVICTION_SECONDS

# Three worker processes start one after the other; on a loaded 2-core machine that alone takes a while.
pytestmark = [pytest.mark.devserver, pytest.mark.timeout(240)]
CALLBACKS = 12
SECONDS = 1 / 3600  # in hours


@contextmanager
def worker_process(
    database_url: URL, temporal_address: str, task_queue: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """The production worker as a child process; it inherits the suite's codec keys."""
    env = engine_env(
        database_url=database_url.render_as_string(hide_password=False),
        temporal_address=temporal_address,
        task_queue=task_queue,
        inherit_engine_settings=True,
    )
    with child_process(worker_command(), env, log=log) as process:
        yield process


async def _count(sessions: async_sessionmaker[AsyncSession], query: object) -> int:
    async with sessions() as session:
        return int(await session.scalar(query) or 0)  # type: ignore[call-overload]


async def _until(
    sessions: async_sessionmaker[AsyncSession], query: object, at_least: int, seconds: float
) -> int:
    """Poll the database until `query` counts at least `at_least`, for at most `seconds`; return the
    last count (a bound on waiting, not an assertion on speed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    count = await _count(sessions, query)
    while count < at_least and loop.time() < deadline:
        await asyncio.sleep(0.02)
        count = await _count(sessions, query)
    return count


async def test_killed_workers_lose_nothing_and_write_nothing_twice(
    dev_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    database_url: URL,
    task_queue: str,
    tmp_path: Path,
) -> None:
    log = tmp_path / "workers.log"
    tenant = await make_tenant(sessions)
    for _ in range(3):
        await add_staff(sessions, tenant)
    await set_callback_policy(
        sessions,
        tenant,
        {
            "sla_hours": {"normal": 6 * SECONDS},
            "escalation_cooldown_hours": 2 * SECONDS,
            "max_escalations": 3,
        },
    )
    address = dev_env.client.service_client.config.target_host
    client = CallbackClient(dev_env.client, task_queue)
    escalations = select(func.count()).select_from(CallbackEscalation)
    expired = select(func.count()).select_from(CallbackRequest).where(CallbackRequest.status == "expired")

    with worker_process(database_url, address, task_queue, log) as first:
        states = [(await client.create(new_callback(tenant))).state for _ in range(CALLBACKS)]
        first.send_signal(signal.SIGKILL)  # 1. while every callback waits on its SLA
    with worker_process(database_url, address, task_queue, log):
        # 2. as soon as the first escalation is written, the others are mid-flight: kill again.
        assert await _until(sessions, escalations, 1, seconds=60) >= 1
    assert await _count(sessions, escalations) < CALLBACKS * 3, "killed too late to be mid-escalation"
    with worker_process(database_url, address, task_queue, log):
        assert await _until(sessions, expired, CALLBACKS, seconds=90) == CALLBACKS
        # 3. the last worker runs every workflow to its end (rows are written before a run completes).
        for state in states:
            handle = client.handle(state.workflow_id)
            try:
                final = await asyncio.wait_for(handle.result(), timeout=60)
            except TimeoutError:
                events = (await handle.fetch_history()).events
                tail = [event.WhichOneof("attributes") for event in events[-15:]]
                raise AssertionError(f"{state.workflow_id} did not finish: {tail}") from None
            assert final.escalation_count == 3
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]

    async with sessions() as session:
        for callback_id in (state.id for state in states):
            sequences = list(
                await session.scalars(
                    select(CallbackEscalation.sequence)
                    .where(CallbackEscalation.callback_request_id == callback_id)
                    .order_by(CallbackEscalation.sequence)
                )
            )
            assert sequences == [1, 2, 3]
            events = list(
                await session.execute(
                    select(CallbackEventRow.seq, CallbackEventRow.type)
                    .where(CallbackEventRow.callback_request_id == callback_id)
                    .order_by(CallbackEventRow.seq)
                )
            )
            assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
            assert [kind for _, kind in events].count("callback.escalated") == 3
            assert [kind for _, kind in events][-1] == "callback.expired"


async def test_sigterm_stops_a_worker_within_its_budget_and_the_next_one_carries_on(
    dev_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    database_url: URL,
    task_queue: str,
    tmp_path: Path,
) -> None:
    """As an orchestrator stops a worker: it stops polling at once and exits cleanly within its grace
    period plus the eviction budget (worker.py `stop_within`), holding open callbacks; the callbacks go
    on with the next worker."""
    log = tmp_path / "workers.log"
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant)
    address = dev_env.client.service_client.config.target_host
    client = CallbackClient(dev_env.client, task_queue)
    budget = Settings().worker_graceful_shutdown_seconds + EVICTION_SECONDS
    with worker_process(database_url, address, task_queue, log) as first:
        states = [(await client.create(new_callback(tenant))).state for _ in range(CALLBACKS)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        first.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(first.wait, budget + 5)
        assert code == 0
        assert loop.time() - started < budget + 2  # the process's own exit on top of the budget
    with worker_process(database_url, address, task_queue, log):
        for state in states:
            done = await asyncio.wait_for(client.act(state.workflow_id, Complete(notes="called")), 60)
            assert done.status == CallbackStatus.COMPLETED
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
