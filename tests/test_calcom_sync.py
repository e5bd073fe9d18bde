"""Cal.com bookings against the real path: the fake Cal.com sends signed webhooks to the API on loopback
when bookings change through it, and the reconciliation job (CalcomBookingSyncWorkflow on Temporal's
time-skipping server, the fake's `GET /v2/bookings`) catches a booking whose webhook was lost."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from calcom.client import CalcomClient
from devstack.calcom_fake import FakeCalcom, serve_fake
from models.calcom import Attendee, CreateBooking
from models.calcom_bookings import BookingSyncConfig, SyncReport
from models.tables import AppointmentModification
from rules.calcom_webhooks import SIGNATURE_HEADER, sign
from tests.api_fixtures import ApiEnv, Sessions, running_api, serve_api
from tests.calcom_fixtures import DAILY, make_client, sample_event_types
from tests.calcom_webhook_fixtures import SECRET, appointment_by_uid, calcom_tenant, counts
from tests.factories import Tenant
from workflows.calcom_sync import CalcomBookingSyncWorkflow


@dataclass
class Stack:
    api: ApiEnv
    fake: FakeCalcom
    calcom: CalcomClient
    tenant: Tenant
    env: WorkflowEnvironment
    task_queue: str

    async def sync(self) -> SyncReport:
        reports = await self.env.client.execute_workflow(
            CalcomBookingSyncWorkflow.run,
            BookingSyncConfig(days=7),
            id=f"calcom-sync-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
            result_type=list[SyncReport],
        )
        return next(report for report in reports if report.company_id == self.tenant.company_id)

    async def book(self, start: datetime, email: str = "lea@example.org") -> str:
        booking = await self.calcom.create_booking(
            CreateBooking(
                event_type_id=DAILY,
                start=start,
                attendee=Attendee(name="Lea Sommer", email=email, time_zone="Europe/Berlin"),
            )
        )
        await self.fake.drain_webhooks()
        return booking.uid


@pytest.fixture
async def stack(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[Stack]:
    tenant = await calcom_tenant(sessions, event_type=DAILY)
    fake = FakeCalcom(sample_event_types())  # the real clock: the sync's window is around now
    async with (
        serve_fake(fake) as calcom_url,
        running_api(time_skipping_env.client, sessions, task_queue, calcom_url=calcom_url) as api,
        serve_api(api.app) as api_url,
    ):
        fake.subscribe(f"{api_url}/v1/calcom/webhooks/{tenant.company_id}", SECRET)
        client = make_client(calcom_url)
        try:
            yield Stack(api, fake, client, tenant, time_skipping_env, task_queue)
        finally:
            await client.aclose()


def free_starts(fake: FakeCalcom, count: int) -> list[datetime]:
    now = datetime.now(UTC)
    return fake.free_slots(fake.event_types[DAILY], now + timedelta(hours=2), now + timedelta(days=4))[:count]


async def test_the_fake_sends_signed_webhooks_that_the_api_applies(stack: Stack, sessions: Sessions) -> None:
    company = stack.tenant.company_id
    first, second = free_starts(stack.fake, 2)
    uid = await stack.book(first)
    sent = stack.fake.sent_webhooks[-1]
    assert (sent.trigger, sent.status) == ("BOOKING_CREATED", 200)
    stored = await appointment_by_uid(sessions, company, uid)
    assert stored is not None
    assert (stored.starts_at, stored.status) == (first, "confirmed")

    moved = await stack.calcom.reschedule_booking(uid, second, rescheduled_by="lea@example.org")
    await stack.fake.drain_webhooks()
    assert stack.fake.sent_webhooks[-1].trigger == "BOOKING_RESCHEDULED"
    after = await appointment_by_uid(sessions, company, moved.uid)
    assert after is not None
    assert (after.id, after.starts_at) == (stored.id, second)

    await stack.calcom.cancel_booking(moved.uid, "the host is ill")  # the host's API key: not the customer
    await stack.fake.drain_webhooks()
    assert [(w.trigger, w.status) for w in stack.fake.sent_webhooks] == [
        ("BOOKING_CREATED", 200),
        ("BOOKING_RESCHEDULED", 200),
        ("BOOKING_CANCELLED", 200),
    ]
    cancelled = await appointment_by_uid(sessions, company, moved.uid)
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    async with sessions() as session:
        kinds = list(
            await session.scalars(
                select(AppointmentModification.modification_type).where(
                    AppointmentModification.appointment_id == stored.id
                )
            )
        )
    assert kinds == ["reschedule"]  # the customer's reschedule counts; the host's cancellation does not

    # The reconciliation finds everything in place.
    report = await stack.sync()
    assert (report.created, report.updated, report.failed) == (0, 0, 0), report


async def test_reconciliation_catches_bookings_whose_webhooks_were_lost(
    stack: Stack, sessions: Sessions
) -> None:
    company = stack.tenant.company_id
    first, second, third = free_starts(stack.fake, 3)
    kept = await stack.book(first, email="kept@example.org")
    stack.fake.pause_webhooks()
    lost = await stack.book(second, email="lost@example.org")
    moved = await stack.calcom.reschedule_booking(kept, third, rescheduled_by="kept@example.org")
    assert [w.dropped for w in stack.fake.sent_webhooks] == [False, True, True]
    assert await appointment_by_uid(sessions, company, lost) is None
    before = await counts(sessions, company)

    report = await stack.sync()
    assert (report.created, report.updated, report.failed) == (1, 1, 0), report
    found = await appointment_by_uid(sessions, company, lost)
    assert found is not None
    assert (found.starts_at, found.status) == (second, "confirmed")
    rescheduled = await appointment_by_uid(sessions, company, moved.uid)
    assert rescheduled is not None
    assert rescheduled.starts_at == third
    after = await counts(sessions, company)
    assert after["appointments"] == before["appointments"] + 1

    # Idempotent with itself and with the webhooks that arrive late after all.
    again = await stack.sync()
    assert (again.created, again.updated) == (0, 0), again
    stack.fake.pause_webhooks(False)
    for webhook in stack.fake.sent_webhooks[1:]:
        response = await stack.api.http().post(
            f"/v1/calcom/webhooks/{company}",
            content=webhook.body,
            headers={SIGNATURE_HEADER: sign(SECRET, webhook.body)},
        )
        assert response.json()["outcome"] in ("unchanged", "ignored"), response.text
    # (The late deliveries are logged, and change nothing else.)
    assert await counts(sessions, company) == {**after, "deliveries": after["deliveries"] + 2}
