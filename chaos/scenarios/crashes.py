"""Processes that die under open callbacks: the worker (SIGKILL), the Temporal server (SIGKILL, then a
restart on its database file), PostgreSQL (`pg_ctl stop -m immediate`, then a start).

Each runs callbacks through their whole life in seconds (breach, three escalations, expiry) and breaks
something while the escalations run. Afterwards every callback must have expired with escalations 1, 2,
3 written once each, a gap-free audit trail, and a row equal to its workflow's final state.
"""

from __future__ import annotations

import asyncio
import uuid

from chaos.checks import audit_callbacks, workflow_health
from chaos.lab import Lab
from chaos.scenario import Outcome, Scenario
from chaos.scenarios.common import (
    company_escalations,
    create_many,
    escalating_tenant,
    escalations,
    new_callback,
    until_company_escalations,
    until_escalations,
    until_status,
)
from models.callbacks import AttemptOutcome, RecordAttempt
from starter.client import CallbackError

ESCALATIONS = 3


def _answered(task: asyncio.Task[object]) -> bool:
    """A staff action answered: its new state, or a refusal that names why."""
    return not task.cancelled() and (task.exception() is None or isinstance(task.exception(), CallbackError))


def _mid_flight(out: Outcome, escalated: int, total: int) -> None:
    out.check(
        0 < escalated < total, f"the fault came with {escalated} of {total} escalations, not mid-flight"
    )


async def _finish(lab: Lab, out: Outcome, ids: list[uuid.UUID], seconds: float) -> None:
    """Wait for every callback to expire, then check the invariant."""
    await until_status(lab, ids, "expired", seconds)
    audit = await audit_callbacks(lab, ids, expect_status="expired", expect_escalations=ESCALATIONS)
    audit.report(out)
    (await workflow_health(lab)).report(out)


async def worker_sigkill(lab: Lab, out: Outcome) -> None:
    count = 300
    total = count * ESCALATIONS
    tenant, _ = await escalating_tenant(lab, sla_seconds=20, cooldown_seconds=4)
    first = await lab.start_worker()
    async with asyncio.TaskGroup() as group:
        # Creation goes on while the workers die: on a busy machine the first callbacks breach before
        # the last ones are created, and a create in flight must survive the kill too.
        creating = group.create_task(
            create_many(lab, [new_callback(tenant, n) for n in range(count)], out=out)
        )
        out.check(
            await until_company_escalations(lab, tenant.company_id, 1, 120), "no escalation within 120 s"
        )
        lab.kill(first)  # 1. as the escalations begin
        at_first_kill = await company_escalations(lab, tenant.company_id)
        second = await lab.start_worker()
        await until_company_escalations(lab, tenant.company_id, total * 2 // 5, 120)
        lab.kill(second)  # 2. in the middle of them
        at_second_kill = await company_escalations(lab, tenant.company_id)
        await lab.start_worker()
    ids = [state.id for state in creating.result()]
    out.figure("kills", 2)
    out.figure("escalated_at_kills", f"{at_first_kill},{at_second_kill}")
    _mid_flight(out, at_first_kill, total)
    _mid_flight(out, at_second_kill, total)
    await _finish(lab, out, ids, 150)


async def temporal_sigkill(lab: Lab, out: Outcome) -> None:
    assert lab.temporal_server is not None
    count = 60
    tenant, _ = await escalating_tenant(lab, sla_seconds=10, cooldown_seconds=3)
    worker = await lab.start_worker()
    states = await create_many(lab, [new_callback(tenant, n) for n in range(count)], out=out)
    ids = [state.id for state in states]
    out.check(await until_escalations(lab, ids, 1, 60), "no escalation began within 60 s")
    killed_at = await escalations(lab, ids)
    lab.temporal_server.kill()
    _mid_flight(out, killed_at, count * ESCALATIONS)
    await asyncio.sleep(3)  # down for a moment: timers fire meanwhile, nobody hears them
    await lab.temporal_server.start()
    out.figure("escalated_at_kill", killed_at)
    await _finish(lab, out, ids, 150)
    out.figure("worker_survived", "yes" if worker.poll() is None else "no")


async def postgres_immediate_stop(lab: Lab, out: Outcome) -> None:
    assert lab.postgres is not None
    count = 60
    tenant, _ = await escalating_tenant(lab, sla_seconds=10, cooldown_seconds=3)
    await lab.start_worker()
    states = await create_many(lab, [new_callback(tenant, n) for n in range(count)], out=out)
    ids = [state.id for state in states]
    out.check(await until_escalations(lab, ids, 1, 60), "no escalation began within 60 s")
    _mid_flight(out, await escalations(lab, ids), count * ESCALATIONS)
    await asyncio.to_thread(lab.postgres.stop_immediately)
    # Staff keep working while the database is down: each action must answer once it is back.
    client = lab.callbacks
    actions = [
        asyncio.create_task(client.act(state.workflow_id, RecordAttempt(outcome=AttemptOutcome.NO_ANSWER)))
        for state in states[:5]
    ]
    try:
        await asyncio.sleep(5)
        await asyncio.to_thread(lab.postgres.start_again)
        done, _ = await asyncio.wait(actions, timeout=60)
    finally:
        for task in actions:
            task.cancel()
    answered = sum(1 for task in done if _answered(task))
    out.figure("actions_answered", f"{answered}/{len(actions)}")
    out.check(
        answered == len(actions), f"{len(actions) - answered} staff actions got no answer after the outage"
    )
    await _finish(lab, out, ids, 150)


SCENARIOS = [
    Scenario(
        "worker-sigkill",
        "300 callbacks escalating on a seconds-long SLA, the worker SIGKILLed twice mid-escalation: every "
        "escalation written exactly once, events gap-free, every row equal to its workflow's state",
        worker_sigkill,
        budget_seconds=240,
    ),
    Scenario(
        "temporal-sigkill",
        "the Temporal server (dev server on a database file) SIGKILLed mid-escalation and restarted: no "
        "callback lost, no escalation twice, rows equal workflow state",
        temporal_sigkill,
        budget_seconds=200,
        own_temporal=True,
    ),
    Scenario(
        "postgres-immediate-stop",
        "PostgreSQL stopped with `pg_ctl stop -m immediate` under escalating callbacks and staff "
        "actions, then started: every action answers, no callback lost, no escalation twice, rows equal "
        "workflow state",
        postgres_immediate_stop,
        budget_seconds=200,
        own_postgres=True,
    ),
]
