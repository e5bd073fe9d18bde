"""What several scenarios do the same way: a tenant whose callbacks escalate within seconds (a `callback`
policy, as tests/test_callback_crash.py does), creating many callbacks at once, counting rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from temporalio.service import RPCError, RPCStatusCode

from chaos.checks import until
from chaos.lab import Lab
from chaos.scenario import Outcome
from devstack.tenants import SeededTenant, add_customers, seed_tenant, set_company_policy
from models.callbacks import CallbackState, NewCallback, Priority
from models.tables import CallbackEscalation, CallbackRequest
from starter.deadlines import TemporalCallFailed
from store.db import transaction

SECOND = 1 / 3600  # a policy's hours, in seconds


async def escalating_tenant(
    lab: Lab,
    *,
    sla_seconds: float,
    cooldown_seconds: float,
    max_escalations: int = 3,
    staff: int = 3,
    customers: int = 0,
    max_open_callbacks: int | None = None,
) -> tuple[SeededTenant, list[int]]:
    """A tenant whose normal callbacks breach after `sla_seconds`, escalate every `cooldown_seconds`
    and expire one cooldown after the last escalation."""
    async with transaction(lab.sessions) as session:
        tenant = await seed_tenant(
            session,
            name=f"Chaos {lab.name}",
            staff=staff,
            linked=staff,
            max_open_callbacks=max_open_callbacks,
        )
        customer_ids = await add_customers(session, tenant.company_id, customers)
        await set_company_policy(
            session,
            tenant.company_id,
            "callback",
            {
                "sla_hours": {"normal": sla_seconds * SECOND, "high": sla_seconds * SECOND},
                "escalation_cooldown_hours": cooldown_seconds * SECOND,
                "max_escalations": max_escalations,
            },
        )
    return tenant, customer_ids


def new_callback(tenant: SeededTenant, n: int, **overrides: Any) -> NewCallback:
    values: dict[str, Any] = {
        "company_id": tenant.company_id,
        "branch_id": tenant.branch_id,
        "service_id": tenant.service_id,
        "customer_name": f"Customer {n}",
        "phone_number": "+49 30 1234567",
        "priority": Priority.NORMAL,
    }
    values.update(overrides)
    return NewCallback(**values)


RETRYABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.DEADLINE_EXCEEDED)


def _not_ready(error: RPCError) -> bool:
    """The server turned the Update away because the workflow's task failed just then (not admitted)."""
    return error.status == RPCStatusCode.FAILED_PRECONDITION and "Workflow Task in failed state" in str(error)


async def create_retrying(lab: Lab, request: NewCallback, key: str, retries: list[int]) -> CallbackState:
    """Create one callback as a careful client does: a refusal for now (Temporal busy or unreachable, an
    Update aborted under load) is retried with the same idempotency key, which makes it safe; `retries`
    counts them."""
    client = lab.callbacks
    for attempt in range(8):
        try:
            return (await client.create(request, idempotency_key=key)).state
        except (TemporalCallFailed, RPCError) as error:
            if isinstance(error, RPCError) and error.status not in RETRYABLE and not _not_ready(error):
                raise
            if attempt == 7:
                raise
            retries.append(1)
            await asyncio.sleep(min(5.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


async def create_many(
    lab: Lab,
    requests: Sequence[NewCallback],
    *,
    concurrency: int = 8,
    key: str = "c",
    out: Outcome | None = None,
) -> list[CallbackState]:
    """Create every callback, `concurrency` at a time (idempotency keys, retried when refused for now);
    `out` gets the number of retries as a figure."""
    gate = asyncio.Semaphore(concurrency)
    retries: list[int] = []

    async def one(n: int, request: NewCallback) -> CallbackState:
        async with gate:
            return await create_retrying(lab, request, f"{lab.name}-{key}-{n}", retries)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(n, request)) for n, request in enumerate(requests)]
    if out is not None:
        out.figure("create_retries", len(retries))
    return [task.result() for task in tasks]


async def count(lab: Lab, *conditions: ColumnElement[bool], table: Any = CallbackRequest) -> int:
    async with lab.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*conditions)) or 0)


async def escalations(lab: Lab, ids: Sequence[uuid.UUID]) -> int:
    return await count(lab, CallbackEscalation.callback_request_id.in_(ids), table=CallbackEscalation)


async def company_escalations(lab: Lab, company_id: int) -> int:
    return await count(lab, CallbackEscalation.company_id == company_id, table=CallbackEscalation)


async def until_company_escalations(lab: Lab, company_id: int, at_least: int, seconds: float) -> bool:
    async def enough() -> bool:
        return await company_escalations(lab, company_id) >= at_least

    return await until(enough, seconds)


async def until_escalations(lab: Lab, ids: Sequence[uuid.UUID], at_least: int, seconds: float) -> bool:
    async def enough() -> bool:
        return await escalations(lab, ids) >= at_least

    return await until(enough, seconds)


async def until_status(lab: Lab, ids: Sequence[uuid.UUID], status: str, seconds: float) -> bool:
    """Wait until every callback of `ids` has `status` in its row."""

    async def all_there() -> bool:
        return await count(lab, CallbackRequest.id.in_(ids), CallbackRequest.status == status) == len(ids)

    return await until(all_there, seconds, interval=0.5)
