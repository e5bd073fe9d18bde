"""The Cal.com activities: service → event type from PostgreSQL, slots from the fake over HTTP, errors
mapped for Temporal's retry policy, and one run through a real (time-skipping) Temporal server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.calcom import CalcomActivities
from models.calcom import (
    Attendee,
    BookingStatus,
    CancelBooking,
    CreateBooking,
    FindSlots,
    FoundSlots,
    RescheduleBooking,
)
from models.tables import Service
from store.calcom import load_service_calendar
from store.db import transaction
from tests.calcom_fixtures import DAILY, SERVICES, WEEKDAYS, CalcomEnv, calcom_env
from tests.calcom_workflow import SlotLookupWorkflow
from tests.factories import Tenant, make_tenant
from tests.temporal_servers import time_skipping_server

Sessions = async_sessionmaker[AsyncSession]
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server; the slot lookup needs no custom search attributes."""
    async with time_skipping_server() as env:
        yield env


async def link(sessions: Sessions, service_id: int, event_type_id: int | None) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(Service).where(Service.id == service_id).values(calcom_event_type_id=event_type_id)
        )


def activities(env: CalcomEnv, sessions: Sessions) -> CalcomActivities:
    return CalcomActivities.build(env.client, sessions)


async def test_service_calendar_comes_from_the_database(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    await link(sessions, tenant.service_ids[0], WEEKDAYS)
    async with transaction(sessions) as session:
        found = await load_service_calendar(session, tenant.service_ids[0])
        other_company = await load_service_calendar(session, tenant.service_ids[0], tenant.company_id + 1)
        missing = await load_service_calendar(session, 10**9)
    assert found is not None
    assert (found.event_type_id, found.time_zone, found.duration_minutes) == (WEEKDAYS, "Europe/Berlin", 30)
    assert other_company is None
    assert missing is None


async def test_find_slots_next_free_and_inside_a_window(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    await link(sessions, tenant.service_ids[0], WEEKDAYS)
    async with calcom_env() as env:
        run = ActivityEnvironment().run
        acts = activities(env, sessions)
        after = datetime(2030, 3, 8, 18, tzinfo=BERLIN)  # Friday evening
        found: FoundSlots = await run(
            acts.find_slots,
            FindSlots(service_id=tenant.service_ids[0], company_id=tenant.company_id, after=after),
        )
        assert found.event_type_id == WEEKDAYS
        assert found.time_zone == "Europe/Berlin"  # the branch's zone
        assert [s.start for s in found.slots] == [
            datetime(2030, 3, 11, h, tzinfo=BERLIN) for h in (9, 10, 11)
        ]
        assert found.searched_until == after + timedelta(days=14)

        window = await run(
            acts.find_slots,
            FindSlots(
                service_id=tenant.service_ids[0],
                window_start=datetime(2030, 3, 12, 14, tzinfo=BERLIN),
                window_end=datetime(2030, 3, 12, 18, tzinfo=BERLIN),
                time_zone="Europe/Lisbon",
                limit=10,
            ),
        )
        assert [s.start.astimezone(BERLIN).hour for s in window.slots] == [14, 15, 16]
        assert window.slots[0].start.utcoffset() == timedelta(0)  # shown in the requested zone


async def test_find_slots_for_a_service_without_calcom_or_unknown(sessions: Sessions) -> None:
    tenant: Tenant = await make_tenant(sessions)
    async with calcom_env() as env:
        run = ActivityEnvironment().run
        acts = activities(env, sessions)
        found = await run(acts.find_slots, FindSlots(service_id=tenant.service_ids[1]))
        assert found.slots == []
        assert found.event_type_id is None
        assert found.note is not None
        assert "no Cal.com event type" in found.note
        with pytest.raises(ApplicationError) as unknown:
            await run(
                acts.find_slots, FindSlots(service_id=tenant.service_ids[1], company_id=tenant.company_id + 1)
            )
        assert unknown.value.non_retryable
        assert unknown.value.type == "UnknownService"
        assert env.fake.requests == []


async def test_errors_are_mapped_for_temporal_retries(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    await link(sessions, tenant.service_ids[0], DAILY)
    request = FindSlots(
        service_id=tenant.service_ids[0], after=datetime(2030, 3, 4, tzinfo=UTC), horizon_days=1
    )
    async with calcom_env(strict=False, max_wait_seconds=0.0, max_attempts=2) as env:
        run = ActivityEnvironment().run
        acts = activities(env, sessions)

        env.fake.fail_next(400)
        with pytest.raises(ApplicationError) as bad:
            await run(acts.find_slots, request)
        assert bad.value.non_retryable
        assert bad.value.type == "CalcomBadRequest"
        assert env.fake.count("/v2/slots") == 1  # not retried

        env.fake.fail_next(500, count=2)
        with pytest.raises(ApplicationError) as down:
            await run(acts.find_slots, request)
        assert not down.value.non_retryable
        assert down.value.type == "CalcomServerError"
        assert down.value.next_retry_delay is None  # the policy's backoff

        env.fake.force_block(30)
        with pytest.raises(ApplicationError) as limited:
            await run(acts.find_slots, request)
        assert not limited.value.non_retryable
        assert limited.value.type == "CalcomRateLimited"
        assert limited.value.next_retry_delay == timedelta(seconds=30)  # the block's Reset, not a guess


async def test_booking_activities(sessions: Sessions) -> None:
    async with calcom_env() as env:
        run = ActivityEnvironment().run
        acts = activities(env, sessions)
        window = (datetime(2030, 3, 5, tzinfo=BERLIN), datetime(2030, 3, 6, tzinfo=BERLIN))
        before = await acts.finder.find_in_window(SERVICES[2], *window)
        booking = await run(
            acts.create_booking,
            CreateBooking(
                event_type_id=WEEKDAYS,
                start=before[0].start,
                attendee=Attendee(name="Erika", email="erika@example.com", time_zone="Europe/Berlin"),
            ),
        )
        after = await acts.finder.find_in_window(SERVICES[2], *window)
        assert booking.start not in {s.start for s in after}  # the cache forgot the event type
        assert len(after) == len(before) - 1

        moved = await run(acts.reschedule_booking, RescheduleBooking(uid=booking.uid, start=before[3].start))
        assert moved.uid != booking.uid
        assert moved.rescheduled_from_uid == booking.uid

        cancelled = await run(acts.cancel_booking, CancelBooking(uid=moved.uid, reason="ill"))
        assert cancelled.status is BookingStatus.CANCELLED
        again = await run(acts.cancel_booking, CancelBooking(uid=moved.uid, reason="ill"))  # a retry
        assert again.status is BookingStatus.CANCELLED
        assert again.uid == moved.uid

        with pytest.raises(ApplicationError) as taken:
            await run(acts.reschedule_booking, RescheduleBooking(uid=booking.uid, start=before[5].start))
        assert taken.value.non_retryable


async def test_workflow_lookup_retries_through_temporal(
    sessions: Sessions, temporal: WorkflowEnvironment
) -> None:
    """A 500 that outlasts the client's own attempts fails the activity; Temporal retries it."""
    tenant = await make_tenant(sessions)
    await link(sessions, tenant.service_ids[0], WEEKDAYS)
    async with calcom_env(strict=False, max_attempts=1) as env:
        acts = activities(env, sessions)
        queue = f"calcom-{uuid.uuid4().hex[:8]}"
        client = temporal.client
        async with Worker(client, task_queue=queue, workflows=[SlotLookupWorkflow], activities=acts.all()):
            env.fake.fail_next(500, count=2)
            found = await client.execute_workflow(
                SlotLookupWorkflow.run,
                FindSlots(service_id=tenant.service_ids[0], after=datetime(2030, 3, 4, tzinfo=UTC)),
                id=f"slots-{uuid.uuid4()}",
                task_queue=queue,
            )
            assert found.slots[0].start == datetime(2030, 3, 4, 9, tzinfo=BERLIN)
            assert env.fake.count("/v2/slots") == 3  # two failed attempts, then success

            env.fake.fail_next(400)
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(
                    SlotLookupWorkflow.run,
                    FindSlots(service_id=tenant.service_ids[0], after=datetime(2030, 4, 1, tzinfo=UTC)),
                    id=f"slots-{uuid.uuid4()}",
                    task_queue=queue,
                )
            assert isinstance(failed.value.cause, ActivityError)
            assert isinstance(failed.value.cause.cause, ApplicationError)
            assert failed.value.cause.cause.type == "CalcomBadRequest"
            assert env.fake.count("/v2/slots") == 4  # a 400 is not retried


async def test_worker_wires_the_calcom_activities(sessions: Sessions, temporal: WorkflowEnvironment) -> None:
    from calcom.client import CalcomClient
    from config import Settings
    from worker import build_worker

    settings = Settings(task_queue=f"wiring-{uuid.uuid4().hex[:8]}", calcom_fake_port=9999)
    assert settings.calcom_url() == "http://127.0.0.1:9999"  # no CALCOM_BASE_URL: the local fake
    assert Settings(calcom_base_url="https://api.cal.com").calcom_url() == "https://api.cal.com"
    async with CalcomClient.from_settings(settings) as calcom:
        assert calcom.base_url == "http://127.0.0.1:9999"
        worker = build_worker(temporal.client, settings, sessions, calcom)  # raises on a clash of names
        assert worker.task_queue == settings.task_queue
