"""Rows under running callbacks: references deleted by SQL behind the engine's back, and a staff member
whose capacity twenty concurrent creations compete for."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

from sqlalchemy import delete, select

from chaos.checks import audit_callbacks, workflow_health
from chaos.lab import Lab
from chaos.scenario import Outcome, Scenario
from chaos.scenarios.common import create_many, escalating_tenant, new_callback, until_status
from devstack.tenants import seed_tenant
from models.callbacks import CallbackState, ChangePriority, Priority
from models.tables import CallbackEventRow, CallbackRequest, Customer, Staff
from starter.client import CallbackError
from store.db import transaction

ANSWER_WITHIN_SECONDS = 15.0  # generous for a loaded machine; a wedged write never answers at all
OPEN = ("pending", "assigned", "contacted")


async def _act_in_time(lab: Lab, state: CallbackState) -> float | None:
    """Seconds the staff action took to answer (a refusal is an answer too), None when it did not."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(ANSWER_WITHIN_SECONDS):
            await lab.callbacks.act(state.workflow_id, ChangePriority(priority=Priority.HIGH))
    except CallbackError:
        pass
    except TimeoutError:
        return None
    return time.monotonic() - started


async def _dropped(lab: Lab, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Per callback, every reference its `callback.reference_dropped` events name (repeats included)."""
    found: dict[uuid.UUID, list[str]] = defaultdict(list)
    async with lab.sessions() as session:
        rows = await session.execute(
            select(CallbackEventRow.callback_request_id, CallbackEventRow.payload).where(
                CallbackEventRow.callback_request_id.in_(ids),
                CallbackEventRow.type == "callback.reference_dropped",
            )
        )
        for callback_id, payload in rows:
            found[callback_id].extend((payload or {}).get("references", []))
    return found


async def dead_references(lab: Lab, out: Outcome) -> None:
    count = 20
    tenant, customers = await escalating_tenant(lab, sla_seconds=12, cooldown_seconds=3, customers=count)
    await lab.start_worker()
    states = await create_many(
        lab, [new_callback(tenant, n, customer_id=customers[n]) for n in range(count)], out=out
    )
    ids = [state.id for state in states]
    victim = next((state.assigned_to for state in states if state.assigned_to is not None), None)
    held_by_victim = {state.id for state in states if state.assigned_to == victim and victim is not None}
    async with transaction(lab.sessions) as session:  # behind the engine's back, as an operator's SQL
        await session.execute(delete(Customer).where(Customer.id.in_(customers)))
        if victim is not None:
            await session.execute(delete(Staff).where(Staff.id == victim))
    answers = await asyncio.gather(*(_act_in_time(lab, state) for state in states))
    hung = sum(1 for seconds in answers if seconds is None)
    out.figure("actions_answered", f"{count - hung}/{count}")
    out.figure("slowest_answer_s", max((s for s in answers if s is not None), default=0.0))
    out.check(hung == 0, f"{hung} staff actions did not answer within {ANSWER_WITHIN_SECONDS:g} s (a hang)")

    await until_status(lab, ids, "expired", 120)
    dropped = await _dropped(lab, ids)
    missing = [i for i in ids if "customer_id" not in dropped.get(i, [])]
    missing += [i for i in held_by_victim if "assigned_to" not in dropped.get(i, [])]
    twice = [i for i, refs in dropped.items() if len(refs) != len(set(refs))]
    out.figure("references_dropped", sum(len(refs) for refs in dropped.values()))
    out.add_lost(len(missing), "dead references dropped without their event")
    out.add_duplicated(len(twice), "callbacks that dropped the same reference twice")
    async with lab.sessions() as session:
        still = await session.scalar(
            select(CallbackRequest.id).where(
                CallbackRequest.id.in_(ids), CallbackRequest.customer_id.is_not(None)
            )
        )
    out.check(still is None, "a row still points at a deleted customer")
    audit = await audit_callbacks(lab, ids, expect_status="expired", expect_escalations=3)
    audit.report(out)
    (await workflow_health(lab)).report(out)


async def capacity_race(lab: Lab, out: Outcome) -> None:
    count = 20
    async with transaction(lab.sessions) as session:
        tenant = await seed_tenant(session, name=f"Chaos {lab.name}", staff=1, linked=1, max_open_callbacks=1)
    staff = tenant.staff_ids[0]
    await lab.start_worker()
    # High priority: always auto-assigned. All at once, against one staff member of capacity 1.
    states = await create_many(
        lab,
        [new_callback(tenant, n, priority=Priority.HIGH) for n in range(count)],
        concurrency=count,
        out=out,
    )
    ids = [state.id for state in states]
    async with lab.sessions() as session:
        in_rows = len(
            list(
                await session.scalars(
                    select(CallbackRequest.id).where(
                        CallbackRequest.id.in_(ids),
                        CallbackRequest.assigned_to == staff,
                        CallbackRequest.status.in_(OPEN),
                    )
                )
            )
        )
    in_workflows = sum(1 for state in states if state.assigned_to == staff and not state.status.is_terminal)
    out.figure("creates", len(states))
    out.figure("open_for_staff_rows", in_rows)
    out.figure("open_for_staff_workflows", in_workflows)
    out.add_duplicated(max(in_rows, in_workflows, 1) - 1, "assignments over capacity")
    audit = await audit_callbacks(lab, ids)
    audit.report(out)
    (await workflow_health(lab)).report(out)


SCENARIOS = [
    Scenario(
        "dead-references",
        "customers and an assignee deleted by SQL under 20 open callbacks: every staff action answers "
        "(no hang), each dead reference is dropped once with a `callback.reference_dropped` event, the "
        "callbacks run on to expiry with rows equal to workflow state",
        dead_references,
        budget_seconds=180,
    ),
    Scenario(
        "capacity-race",
        "20 concurrent creates against one staff member of capacity 1: that staff member holds at most "
        "one open callback, in the rows and in the workflows",
        capacity_race,
        budget_seconds=120,
    ),
]
