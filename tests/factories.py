"""Tenants for tests, written straight to the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import Branch, Company, Customer, Service, Staff, StaffService
from store.db import transaction


@dataclass
class Tenant:
    company_id: int
    branch_ids: list[int]
    service_ids: list[int]
    staff_ids: list[uuid.UUID] = field(default_factory=list)
    customer_ids: list[int] = field(default_factory=list)


def staff_uuid(n: int) -> uuid.UUID:
    """Readable, ordered staff ids: staff_uuid(1) < staff_uuid(2) < ..."""
    return uuid.UUID(int=n)


async def make_tenant(
    sessions: async_sessionmaker[AsyncSession], *, name: str = "Praxis Sonnenschein", staff: int = 0
) -> Tenant:
    async with transaction(sessions) as session:
        company = Company(name=name, time_zone="Europe/Berlin", currency="EUR")
        session.add(company)
        await session.flush()
        branches = [
            Branch(company_id=company.id, name=f"{name} {city}", time_zone="Europe/Berlin")
            for city in ("Berlin", "Hamburg")
        ]
        session.add_all(branches)
        await session.flush()
        services = [
            Service(company_id=company.id, branch_id=branches[0].id, name=label, duration_minutes=30)
            for label in ("Checkup", "Cleaning")
        ]
        customer = Customer(company_id=company.id, name="Erika Mustermann", phone_number="+4930123456")
        session.add_all([*services, customer])
        await session.flush()
        tenant = Tenant(
            company.id, [b.id for b in branches], [s.id for s in services], customer_ids=[customer.id]
        )
    for _ in range(staff):
        await add_staff(sessions, tenant)
    return tenant


_staff_counter = iter(range(1, 1_000_000))


async def add_staff(
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    *,
    branch: int = 0,
    active: bool = True,
    services: tuple[int, ...] = (),
    max_open_callbacks: int | None = None,
    staff_id: uuid.UUID | None = None,
) -> uuid.UUID:
    new_id = staff_id or staff_uuid(next(_staff_counter))
    async with transaction(sessions) as session:
        session.add(
            Staff(
                id=new_id,
                company_id=tenant.company_id,
                branch_id=tenant.branch_ids[branch],
                name=f"Staff {new_id.int}",
                is_active=active,
                max_open_callbacks=max_open_callbacks,
            )
        )
        await session.flush()
        for index in services:
            session.add(
                StaffService(
                    staff_id=new_id, service_id=tenant.service_ids[index], company_id=tenant.company_id
                )
            )
    tenant.staff_ids.append(new_id)
    return new_id


async def add_open_callbacks(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant, staff_id: uuid.UUID, count: int
) -> None:
    """Give a staff member `count` open (assigned) callbacks, to load them for the assignment rules."""
    from datetime import UTC, datetime, timedelta

    from models.tables import CallbackRequest

    async with transaction(sessions) as session:
        for _ in range(count):
            session.add(
                CallbackRequest(
                    id=uuid.uuid4(),
                    company_id=tenant.company_id,
                    branch_id=tenant.branch_ids[0],
                    phone_number="+4930123456",
                    customer_name="Busy",
                    priority="normal",
                    status="assigned",
                    assigned_to=staff_id,
                    expires_at=datetime.now(UTC) + timedelta(hours=24),
                )
            )


async def set_callback_policy(
    sessions: async_sessionmaker[AsyncSession], tenant: Tenant, config: dict[str, object]
) -> None:
    """A company-level `callback` policy (SLA hours, auto-assign, cooldown, attempts, escalations)."""
    from models.tables import PolicyConfiguration

    async with transaction(sessions) as session:
        session.add(
            PolicyConfiguration(
                company_id=tenant.company_id,
                configurable_type="company",
                configurable_id=str(tenant.company_id),
                policy_type="callback",
                config=config,
            )
        )
