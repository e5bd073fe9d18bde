"""Appointment changes against the fake Cal.com: an answer that comes after the client's timeout, a cancel
racing a reschedule of the same appointment, two cancels racing for the last one the quota allows.

Afterwards our rows and Cal.com must agree: a cancelled appointment has no live booking left, any other
one has exactly one, the booking its row names, at the row's time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from chaos.checks import workflow_health
from chaos.lab import Lab
from chaos.scenario import Outcome, Scenario
from devstack.calcom_fake import FakeBooking, FakeCalcom, RateLimitConfig
from devstack.tenants import SeededTenant, add_appointment, add_customers, seed_tenant, set_company_policy
from models.appointments import AppointmentChangeOutcome
from models.tables import Appointment, AppointmentModification
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


async def change(call: Awaitable[AppointmentChangeOutcome]) -> str:
    """Run one change within the bound; its status, the error kind, or `hung`."""
    try:
        async with asyncio.timeout(CHANGE_WITHIN_SECONDS):
            outcome = await call
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
        chain: list[FakeBooking] = []
        uid: str | None = item.first_uid
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


def _applied_matches_rows(out: Outcome, statuses: dict[int, str], rows_changed: dict[int, bool]) -> None:
    """The caller was told the truth: APPLIED exactly where the row changed."""
    wrong = [a for a, status in statuses.items() if (status == "applied") != rows_changed.get(a, False)]
    out.check(not wrong, f"outcomes contradict the rows of appointments {wrong[:3]}")


async def _rows(lab: Lab, booked: list[Booked]) -> dict[int, Appointment]:
    async with lab.sessions() as session:
        found = await session.scalars(
            select(Appointment).where(Appointment.id.in_([b.appointment_id for b in booked]))
        )
        return {row.id: row for row in found}


async def late_answer(lab: Lab, out: Outcome) -> None:
    # The worker's Cal.com client gives up after 1 s; Cal.com makes the change and answers after 3 s.
    world = await booking_world(lab, CALLBACKS_CALCOM_TIMEOUT_SECONDS="1")
    starts = free_starts(world.fake, 3)
    moved, cancelled = await book(lab, world, starts[:2], await customers(lab, world, 2))
    world.fake.slow_down(3.0, path_suffix="/reschedule")
    world.fake.slow_down(3.0, path_suffix="/cancel")
    client, company = lab.appointments, world.tenant.company_id
    reschedule, cancel = await asyncio.gather(
        change(client.reschedule(company, moved.appointment_id, starts[2], request_id="late-reschedule")),
        change(client.cancel(company, cancelled.appointment_id, request_id="late-cancel")),
    )
    await asyncio.sleep(3.5)  # every slow answer has gone out
    out.figure("reschedule", reschedule)
    out.figure("cancel", cancel)
    out.figure("late_answers", sum(1 for r in world.fake.requests if r.answer_delay))
    out.add_lost(sum(1 for s in (reschedule, cancel) if s == "hung"), "changes without an answer (hung)")
    rows = await _rows(lab, [moved, cancelled])
    _applied_matches_rows(
        out,
        {moved.appointment_id: reschedule, cancelled.appointment_id: cancel},
        {
            moved.appointment_id: rows[moved.appointment_id].starts_at == starts[2],
            cancelled.appointment_id: rows[cancelled.appointment_id].status == "cancelled",
        },
    )
    await settle(lab, out, world.fake, [moved, cancelled])


async def cancel_reschedule_race(lab: Lab, out: Outcome) -> None:
    pairs = 6
    world = await booking_world(lab)
    starts = free_starts(world.fake, pairs * 2)
    booked = await book(lab, world, starts[:pairs], await customers(lab, world, pairs))
    client, company = lab.appointments, world.tenant.company_id
    calls = []
    for item, new_start in zip(booked, starts[pairs:], strict=True):
        calls.append(
            change(client.cancel(company, item.appointment_id, request_id=f"race-c-{item.appointment_id}"))
        )
        calls.append(
            change(
                client.reschedule(
                    company, item.appointment_id, new_start, request_id=f"race-r-{item.appointment_id}"
                )
            )
        )
    statuses = await asyncio.gather(*calls)
    recorded = await _recorded_changes(lab, booked)
    rows = await _rows(lab, booked)
    outcomes = {"cancel": 0, "reschedule": 0, "both, one after the other": 0}
    neither = out_of_order = 0
    for item, cancel, reschedule in zip(booked, statuses[0::2], statuses[1::2], strict=True):
        applied = [
            name for name, status in (("cancel", cancel), ("reschedule", reschedule)) if status == "applied"
        ]
        if not applied:
            neither += 1
        elif len(applied) == 1:
            outcomes[applied[0]] += 1
        # Both applied is one order of the two: the reschedule first, then the cancel of what it made.
        elif recorded.get(item.appointment_id) == ["reschedule", "cancel"] and (
            rows[item.appointment_id].status == "cancelled"
        ):
            outcomes["both, one after the other"] += 1
        else:
            out_of_order += 1
    out.figure("pairs", pairs)
    out.figure("cancel_won", outcomes["cancel"])
    out.figure("reschedule_won", outcomes["reschedule"])
    out.figure("reschedule_then_cancel", outcomes["both, one after the other"])
    out.add_duplicated(out_of_order, "appointments where both changes applied to the same original")
    out.add_lost(neither, "appointments where neither change applied")
    await settle(lab, out, world.fake, booked)


async def _recorded_changes(lab: Lab, booked: list[Booked]) -> dict[int, list[str]]:
    """Per appointment, its recorded modifications in the order they were recorded."""
    found: dict[int, list[str]] = {}
    async with lab.sessions() as session:
        rows = await session.execute(
            select(AppointmentModification.appointment_id, AppointmentModification.modification_type)
            .where(AppointmentModification.appointment_id.in_([b.appointment_id for b in booked]))
            .order_by(AppointmentModification.id)
        )
        for appointment_id, kind in rows:
            found.setdefault(appointment_id, []).append(kind)
    return found


async def quota_race(lab: Lab, out: Outcome) -> None:
    people = 4
    world = await booking_world(lab)
    async with transaction(lab.sessions) as session:
        await set_company_policy(
            session, world.tenant.company_id, "cancellation", {"max_cancellations_per_month": 2}
        )
    who = await customers(lab, world, people)
    starts = free_starts(world.fake, people * 3)
    booked = await book(lab, world, starts, [c for c in who for _ in range(3)])
    client, company = lab.appointments, world.tenant.company_id
    # Each customer uses one of the two cancellations, then cancels two more appointments at once.
    firsts = await asyncio.gather(
        *(
            change(client.cancel(company, booked[3 * i].appointment_id, request_id=f"q-{i}-0"))
            for i in range(people)
        )
    )
    out.check(all(status == "applied" for status in firsts), f"the first cancellations: {firsts}")
    racing = await asyncio.gather(
        *(
            change(client.cancel(company, booked[3 * i + k].appointment_id, request_id=f"q-{i}-{k}"))
            for i in range(people)
            for k in (1, 2)
        )
    )
    pairs = [racing[i : i + 2] for i in range(0, len(racing), 2)]
    over = sum(1 for pair in pairs if pair.count("applied") == 2)
    out.figure("customers", people)
    out.figure("allowed_at_quota", "/".join(str(pair.count("applied")) for pair in pairs))
    out.figure("denied", sum(pair.count("denied") for pair in pairs))
    out.add_duplicated(over, "cancellations beyond the quota")
    out.add_lost(
        sum(1 for pair in pairs if "applied" not in pair), "customers refused the cancellation they had left"
    )
    await settle(lab, out, world.fake, booked)


SCENARIOS = [
    Scenario(
        "calcom-late-answer",
        "Cal.com makes a reschedule and a cancel but answers after the client's timeout: each change ends "
        "with an answer that tells the truth, our row and Cal.com agree, no orphaned booking",
        late_answer,
        budget_seconds=150,
    ),
    Scenario(
        "cancel-reschedule-race",
        "a cancel and a reschedule of the same appointment at once (6 appointments): one wins (or both "
        "apply one after the other), our rows and Cal.com agree, no orphaned booking",
        cancel_reschedule_race,
        budget_seconds=150,
    ),
    Scenario(
        "quota-race",
        "two cancels at once when the cancellation quota allows one more (4 customers): exactly one is "
        "allowed, the other denied; rows and Cal.com agree",
        quota_race,
        budget_seconds=150,
    ),
]
