"""The demo tenant `make dev` seeds once: a clinic with two branches, services, staff, customers and
upcoming appointments, enough to try every command of the README."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import Appointment, Branch, Company, Customer, Service, Staff, StaffService
from store.db import transaction

DEMO_COMPANY = "Demo Praxis Sonnenschein"

OPENING_HOURS = {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
# The demo's staff are on call around the clock (their own hours win over the branch's 08:00–18:00): the
# demo callbacks are assigned, warned and escalated whenever `make dev` is started, evenings and weekends
# included (with the branch's hours nobody would be on shift then, and every callback would wait).
ON_CALL_HOURS = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def demo_staff_id(n: int) -> uuid.UUID:
    """Stable ids so README examples work on every machine."""
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


async def seed_demo(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Seed the demo tenant unless it exists. Returns whether it seeded."""
    async with transaction(sessions) as session:
        if await session.scalar(select(Company.id).where(Company.name == DEMO_COMPANY)) is not None:
            return False
        await _seed(session)
        return True


async def demo_admin_key(sessions: async_sessionmaker[AsyncSession]) -> str:
    """A new admin key of the demo company, for the banner of `make dev`."""
    from store.api_keys import create_key

    async with transaction(sessions) as session:
        company_id = await session.scalar(select(Company.id).where(Company.name == DEMO_COMPANY))
        assert company_id is not None, "the demo tenant is seeded first"
        created = await create_key(session, name="make dev", role="admin", company_id=company_id)
    return created.secret


async def demo_calcom_webhook(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, str]:
    """The demo company's id and its Cal.com webhook secret (made now for a tenant seeded without one):
    what the fake Cal.com signs its webhooks with."""
    async with transaction(sessions) as session:
        company = await session.scalar(select(Company).where(Company.name == DEMO_COMPANY))
        assert company is not None, "the demo tenant is seeded first"
        if not company.calcom_webhook_secret:
            company.calcom_webhook_secret = secrets.token_urlsafe(24)
        return company.id, company.calcom_webhook_secret


async def _seed(session: AsyncSession) -> None:
    company = Company(
        name=DEMO_COMPANY,
        time_zone="Europe/Berlin",
        currency="EUR",
        calcom_webhook_secret=secrets.token_urlsafe(24),
    )
    session.add(company)
    await session.flush()
    berlin = Branch(
        company_id=company.id, name="Berlin Mitte", time_zone="Europe/Berlin", opening_hours=OPENING_HOURS
    )
    lisbon = Branch(
        company_id=company.id, name="Lisboa", time_zone="Europe/Lisbon", opening_hours=OPENING_HOURS
    )
    session.add_all([berlin, lisbon])
    await session.flush()
    services = [
        Service(
            company_id=company.id,
            branch_id=berlin.id,
            name="Checkup",
            duration_minutes=30,
            price=Decimal("60.00"),
            calcom_event_type_id=1001,
        ),
        Service(
            company_id=company.id,
            branch_id=berlin.id,
            name="Cleaning",
            duration_minutes=45,
            price=Decimal("90.00"),
            calcom_event_type_id=1002,
        ),
        Service(
            company_id=company.id,
            branch_id=lisbon.id,
            name="Consultation",
            duration_minutes=20,
            price=Decimal("40.00"),
            calcom_event_type_id=1003,
        ),
        Service(
            company_id=company.id,
            branch_id=None,
            name="Video consultation",
            duration_minutes=15,
            price=Decimal("25.00"),
            calcom_event_type_id=1004,
        ),
    ]
    session.add_all(services)
    await session.flush()
    people = [
        (1, "Anna Becker", berlin.id, (0, 1)),
        (2, "Jonas Weber", berlin.id, (0,)),
        (3, "Lena Hoffmann", berlin.id, (1, 3)),
        (4, "Mateus Silva", lisbon.id, (2,)),
        (5, "Inês Costa", lisbon.id, (2, 3)),
        (6, "Paul Schulz", berlin.id, ()),
    ]
    for n, name, branch_id, links in people:
        staff_id = demo_staff_id(n)
        session.add(
            Staff(
                id=staff_id,
                company_id=company.id,
                branch_id=branch_id,
                name=name,
                email=f"{name.split()[0].lower()}@demo.example",
                is_manager=(n == 6),
                working_hours=ON_CALL_HOURS,
            )
        )
        await session.flush()
        session.add_all(
            StaffService(staff_id=staff_id, service_id=services[i].id, company_id=company.id) for i in links
        )
    customers = [
        Customer(company_id=company.id, name="Erika Mustermann", phone_number="+4915123456789"),
        Customer(company_id=company.id, name="Max Mustermann", phone_number="+4930901820"),
        Customer(company_id=company.id, name="Joana Pereira", phone_number="+351912345678", locale="pt"),
    ]
    session.add_all(customers)
    await session.flush()
    tomorrow = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    for i, customer in enumerate(customers):
        service = services[i % 3]
        starts = tomorrow + timedelta(days=i, hours=i)
        session.add(
            Appointment(
                company_id=company.id,
                branch_id=service.branch_id or berlin.id,
                service_id=service.id,
                staff_id=demo_staff_id(i + 1),
                customer_id=customer.id,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=service.duration_minutes),
                price=service.price,
                status="scheduled",
            )
        )
