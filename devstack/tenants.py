"""Tenants for the benchmarks and the chaos runs, written straight to the database (as an import would).

`seed_tenant` makes one company with a branch (open around the clock: no opening hours), services and
staff, the first `linked` staff linked to every service, so auto-assignment has real choices. The extras
(customers, a `callback` policy, notification settings, appointments) are small functions beside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import (
    Appointment,
    Branch,
    Company,
    Customer,
    PolicyConfiguration,
    Service,
    Staff,
    StaffService,
)


@dataclass(frozen=True)
class SeededTenant:
    company_id: int
    branch_id: int
    service_id: int  # the first of `service_ids`
    service_ids: list[int] = field(default_factory=list)
    staff_ids: list[uuid.UUID] = field(default_factory=list)


async def seed_tenant(
    session: AsyncSession,
    *,
    name: str = "Bench",
    staff: int = 8,
    linked: int = 4,
    max_open_callbacks: int | None = None,
    event_type_ids: Sequence[int | None] = (None,),
    staff_email_domain: str | None = None,
) -> SeededTenant:
    """One company with a branch, one service per entry of `event_type_ids` (its Cal.com event type, or
    None: not bookable) and `staff` people with capacity `max_open_callbacks`, the first `linked` of them
    linked to every service. With `staff_email_domain`, staff have mail addresses there."""
    company = Company(name=name, time_zone="Europe/Berlin", currency="EUR")
    session.add(company)
    await session.flush()
    branch = Branch(company_id=company.id, name="Berlin", time_zone="Europe/Berlin")
    session.add(branch)
    await session.flush()
    services = [
        Service(
            company_id=company.id,
            branch_id=branch.id,
            name=f"Checkup {n}",
            duration_minutes=30,
            calcom_event_type_id=event_type,
        )
        for n, event_type in enumerate(event_type_ids)
    ]
    people = [
        Staff(
            id=uuid.uuid4(),
            company_id=company.id,
            branch_id=branch.id,
            name=f"S{i}",
            max_open_callbacks=max_open_callbacks,
            email=f"s{i}.{company.id}@{staff_email_domain}" if staff_email_domain else None,
        )
        for i in range(staff)
    ]
    session.add_all([*services, *people])
    await session.flush()
    session.add_all(
        StaffService(staff_id=person.id, service_id=service.id, company_id=company.id)
        for person in people[:linked]
        for service in services
    )
    await session.flush()
    return SeededTenant(
        company.id, branch.id, services[0].id, [s.id for s in services], [p.id for p in people]
    )


async def add_customers(
    session: AsyncSession, company_id: int, count: int, *, email_domain: str | None = None
) -> list[int]:
    customers = [
        Customer(
            company_id=company_id,
            name=f"Customer {n}",
            phone_number="+4930123456",
            email=f"c{n}.{company_id}@{email_domain}" if email_domain else None,
        )
        for n in range(count)
    ]
    session.add_all(customers)
    await session.flush()
    return [customer.id for customer in customers]


async def set_company_policy(
    session: AsyncSession, company_id: int, policy_type: str, config: dict[str, Any]
) -> None:
    """A company-level policy (`callback`: SLA hours, cooldown, escalations; `cancellation`: quota …)."""
    session.add(
        PolicyConfiguration(
            company_id=company_id,
            configurable_type="company",
            configurable_id=str(company_id),
            policy_type=policy_type,
            config=config,
        )
    )
    await session.flush()


async def add_appointment(
    session: AsyncSession,
    tenant: SeededTenant,
    customer_id: int,
    starts_at: datetime,
    *,
    minutes: int = 30,
    booking_uid: str | None = None,
) -> int:
    appointment = Appointment(
        company_id=tenant.company_id,
        branch_id=tenant.branch_id,
        service_id=tenant.service_id,
        customer_id=customer_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        price=Decimal("80.00"),
        calcom_booking_uid=booking_uid,
    )
    session.add(appointment)
    await session.flush()
    return appointment.id
