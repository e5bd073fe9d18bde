"""Stored appointments and their recorded changes, as the appointment policy tests make and read them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.policies import ModificationType
from models.tables import Appointment, AppointmentModification, AppointmentModificationStat, Customer
from store import appointment_policies as store
from store.db import transaction
from store.policies import PolicyResolver, set_policy
from tests.factories import Tenant

Sessions = async_sessionmaker[AsyncSession]
CANCEL = ModificationType.CANCEL
RESCHEDULE = ModificationType.RESCHEDULE


async def db_now(sessions: Sessions) -> datetime:
    async with sessions() as session:
        moment: datetime = await session.scalar(select(func.now()))  # type: ignore[assignment]
    return moment


async def add_appointment(
    sessions: Sessions,
    tenant: Tenant,
    starts_at: datetime,
    *,
    price: str = "80.00",
    customer: int = 0,
    booking_uid: str | None = None,
) -> int:
    """A 30-minute appointment at the tenant's first branch and service, with its first staff member (if
    it has any) and the `customer`-th customer; `booking_uid` links it to a Cal.com booking."""
    async with transaction(sessions) as session:
        appointment = Appointment(
            company_id=tenant.company_id,
            branch_id=tenant.branch_ids[0],
            service_id=tenant.service_ids[0],
            staff_id=tenant.staff_ids[0] if tenant.staff_ids else None,
            customer_id=tenant.customer_ids[customer],
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=30),
            price=Decimal(price),
            calcom_booking_uid=booking_uid,
        )
        session.add(appointment)
        await session.flush()
        return appointment.id


async def add_customer(sessions: Sessions, tenant: Tenant, name: str) -> int:
    async with transaction(sessions) as session:
        customer = Customer(company_id=tenant.company_id, name=name)
        session.add(customer)
        await session.flush()
    tenant.customer_ids.append(customer.id)
    return customer.id


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


async def record(
    sessions: Sessions,
    tenant: Tenant,
    appointment_id: int,
    change: ModificationType = CANCEL,
    *,
    customer: int = 0,
    created_at: datetime | None = None,
    request_id: str | None = None,
    company_id: int | None = None,
) -> store.RecordedModification:
    async with transaction(sessions) as session:
        return await store.record_modification(
            session,
            company_id=company_id or tenant.company_id,
            appointment_id=appointment_id,
            customer_id=tenant.customer_ids[customer],
            change=change,
            within_policy=True,
            fee_charged=Decimal("10"),
            request_id=request_id or str(uuid.uuid4()),
            modified_by_type="customer",
            modified_by_id=str(tenant.customer_ids[customer]),
            created_at=created_at,
        )


async def check(
    resolver: PolicyResolver, sessions: Sessions, appointment_id: int, change: ModificationType, now: datetime
) -> Any:
    async with sessions() as session:
        return await store.check_change(
            resolver, session, appointment_id=appointment_id, change=change, now=now
        )


async def stats_rows(sessions: Sessions) -> list[tuple[int, int, str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(
                AppointmentModificationStat.company_id,
                AppointmentModificationStat.customer_id,
                AppointmentModificationStat.stat_type,
                AppointmentModificationStat.count,
            ).order_by(AppointmentModificationStat.company_id, AppointmentModificationStat.stat_type)
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


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
