"""Appointment changes against the fake Cal.com: an answer that comes after the client's timeout, a cancel
racing a reschedule of the same appointment, two cancels racing for the last one the quota allows.

Afterwards our rows and Cal.com must agree: a cancelled appointment has no live booking left, any other
one has exactly one, the booking its row names, at the row's time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from chaos.checks import workflow_health
from chaos.lab import Lab
from chaos.scenario import Outcome
from devstack.calcom_fake import FakeCalcom, RateLimitConfig
from devstack.tenants import SeededTenant, add_appointment, add_customers, seed_tenant
from models.appointments import AppointmentChangeOutcome
from models.tables import Appointment
from starter.appointments import AppointmentChangeError
from store.db import transaction

EVENT_TYPE = 1001  # the fake's demo "checkup", Mon–Fri 08:00–18:00 Berlin, 30 min
API_KEY = "cal_chaos_bookings_0123456789"
CHANGE_WITHIN_SECONDS = 120.0


@dataclass
class Booked:
    appointment_id: int
    customer_id: int
    first_uid: str  # the booking it started with; reschedules chain from it


@dataclass
class BookingWorld:
    fake: FakeCalcom
    tenant: SeededTenant
    env: dict[str, str]


async def booking_world(lab: Lab, **worker_env: str) -> BookingWorld:
    """The fake Cal.com (no rate limit to speak of), a tenant, and a worker talking to that fake."""
    fake = FakeCalcom(rate_limit=RateLimitConfig(limit=100_000))
    url = await lab.serve_calcom(fake)
    async with transaction(lab.sessions) as session:
        tenant = await seed_tenant(
            session, name=f"Chaos {lab.name}", staff=1, linked=1, event_type_ids=(EVENT_TYPE,)
        )
    env = {"CALCOM_BASE_URL": url, "CALCOM_API_KEY": API_KEY, **worker_env}
    await lab.start_worker(env)
    return BookingWorld(fake, tenant, env)


def free_starts(fake: FakeCalcom, count: int) -> list[datetime]:
    """`count` free slot starts of the event type, from two days ahead (well past any notice)."""
    now = datetime.now(UTC)
    slots = fake.free_slots(fake.event_types[EVENT_TYPE], now + timedelta(days=2), now + timedelta(days=30))
    if len(slots) < count:
        raise RuntimeError(f"the fake has only {len(slots)} free slots")
    return slots[:count]


async def book(lab: Lab, world: BookingWorld, starts: list[datetime], customers: list[int]) -> list[Booked]:
    """One appointment per start, booked in Cal.com and stored with its booking uid."""
    booked = []
    async with transaction(lab.sessions) as session:
        for start, customer in zip(starts, customers, strict=True):
            booking = world.fake.book(EVENT_TYPE, start)
            appointment = await add_appointment(
                session, world.tenant, customer, start, booking_uid=booking.uid
            )
            booked.append(Booked(appointment, customer, booking.uid))
    return booked


async def customers(lab: Lab, world: BookingWorld, count: int) -> list[int]:
    async with transaction(lab.sessions) as session:
        return await add_customers(session, world.tenant.company_id, count)


async def change(call: asyncio.Future[AppointmentChangeOutcome] | object) -> str:
    """Run one change within the bound; its status, the error kind, or `hung`."""
    try:
        async with asyncio.timeout(CHANGE_WITHIN_SECONDS):
            outcome: AppointmentChangeOutcome = await call  # type: ignore[misc]
    except AppointmentChangeError as error:
        return f"error:{error.kind}"
    except TimeoutError:
        return "hung"
    return outcome.status.value


@dataclass
class Agreement:
    disagreeing: list[str]
    orphans: int  # live Cal.com bookings beyond what the rows hold

    def report(self, out: Outcome) -> None:
        out.figure("disagree", len(self.disagreeing))
        out.check(not self.disagreeing, f"rows and Cal.com disagree: {'; '.join(self.disagreeing[:3])}")
        out.add_duplicated(self.orphans, "live Cal.com bookings nobody holds (orphans)")


async def agreement(lab: Lab, fake: FakeCalcom, booked: list[Booked]) -> Agreement:
    """Compare every appointment's row with its chain of Cal.com bookings."""
    async with lab.sessions() as session:
        rows = {
            row.id: row
            for row in await session.scalars(
                select(Appointment).where(Appointment.id.in_([b.appointment_id for b in booked]))
            )
        }
    disagreeing: list[str] = []
    orphans = 0
    for item in booked:
        row = rows[item.appointment_id]
        chain, uid = [], item.first_uid
        while uid is not None and uid in fake.bookings:
            chain.append(fake.bookings[uid])
            uid = fake.bookings[uid].rescheduled_to_uid
        live = [booking for booking in chain if booking.status != "cancelled"]
        if row.status == "cancelled":
            orphans += len(live)
            if live:
                disagreeing.append(f"appointment {row.id} cancelled, Cal.com booking {live[0].uid} live")
            continue
        orphans += max(0, len(live) - 1)
        holds = [b for b in live if b.uid == row.calcom_booking_uid]
        if not holds:
            disagreeing.append(
                f"appointment {row.id} holds {row.calcom_booking_uid}, which Cal.com cancelled"
            )
        elif holds[0].start != row.starts_at:
            disagreeing.append(f"appointment {row.id} at {row.starts_at}, Cal.com at {holds[0].start}")
    return Agreement(disagreeing, orphans)


async def settle(lab: Lab, out: Outcome, fake: FakeCalcom, booked: list[Booked]) -> None:
    """The common end of every booking scenario: rows and Cal.com agree, no workflow stuck."""
    (await agreement(lab, fake, booked)).report(out)
    (await workflow_health(lab)).report(out)
