"""Helpers of the appointment change tests: stored appointments and their modifications, a worker with its
typed client, and time skipping while a client waits on an Update.

The time-skipping test server moves its clock on its own only while a client waits for a workflow
*result*; a client waiting on an Update (every appointment change is one) would wait out retries and
timers in real time. `skipping` lets the server's clock run ahead while the call is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from calcom.client import CalcomClient
from config import Settings
from models.tables import Appointment, AppointmentModification
from starter.appointments import AppointmentClient
from store.db import transaction
from store.policies import set_policy
from tests.factories import Tenant
from worker import build_worker

T = TypeVar("T")
STEP = timedelta(seconds=5)


async def skipping(env: WorkflowEnvironment, call: Awaitable[T], step: timedelta = STEP) -> T:
    """Await `call` while the test server skips time in `step`s (it skips only while nothing runs)."""
    task = asyncio.ensure_future(call)
    while not task.done():
        sleeper = asyncio.ensure_future(env.sleep(step))
        await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        if not sleeper.done():
            sleeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sleeper
    return await task


Sessions = async_sessionmaker[AsyncSession]
BERLIN = ZoneInfo("Europe/Berlin")


@asynccontextmanager
async def appointment_worker(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str, calcom: CalcomClient
) -> AsyncIterator[AppointmentClient]:
    async with build_worker(env.client, Settings(task_queue=task_queue), sessions, calcom=calcom):
        yield AppointmentClient(env.client, task_queue)


async def server_now(env: WorkflowEnvironment) -> datetime:
    return (await env.get_current_time()).replace(microsecond=0)


async def add_appointment(
    sessions: Sessions,
    tenant: Tenant,
    starts_at: datetime,
    *,
    booking_uid: str | None = None,
    price: str = "80.00",
) -> int:
    async with transaction(sessions) as session:
        appointment = Appointment(
            company_id=tenant.company_id,
            branch_id=tenant.branch_ids[0],
            service_id=tenant.service_ids[0],
            customer_id=tenant.customer_ids[0],
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=30),
            price=Decimal(price),
            calcom_booking_uid=booking_uid,
        )
        session.add(appointment)
        await session.flush()
        return appointment.id


async def company_policy(
    sessions: Sessions, tenant: Tenant, policy_type: str, config: dict[str, Any]
) -> None:
    async with transaction(sessions) as session:
        await set_policy(
            session,
            company_id=tenant.company_id,
            level="company",
            entity_id=tenant.company_id,
            policy_type=policy_type,
            config=config,
        )


async def appointment_row(sessions: Sessions, appointment_id: int) -> Appointment:
    async with sessions() as session:
        found = await session.get(Appointment, appointment_id)
    assert found is not None
    return found


async def modifications(sessions: Sessions, appointment_id: int) -> list[AppointmentModification]:
    async with sessions() as session:
        rows = await session.scalars(
            select(AppointmentModification)
            .where(AppointmentModification.appointment_id == appointment_id)
            .order_by(AppointmentModification.id)
        )
        return list(rows)
