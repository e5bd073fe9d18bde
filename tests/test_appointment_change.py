"""Cancel and reschedule through the per-appointment `AppointmentWorkflow`: real PostgreSQL, the fake
Cal.com over HTTP and Temporal's time-skipping server, driven through the typed client
(starter/appointments.py).

Appointment times are taken from the test server's clock (`get_current_time`); the client dates each
request by the wall clock (`requested_at`), which the policy is decided at. A Cal.com outage, the record
activity's idempotency and the replay of older changes: test_appointment_change_recovery.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from models.appointments import Actor, ActorType, ChangeStatus
from models.tables import AppointmentModificationStat
from starter.appointments import REQUEST_ID_REUSED, AppointmentChangeError
from store.db import transaction
from tests.appointment_fixtures import BERLIN, appointment_worker, server_now
from tests.appointment_records import (
    Sessions,
    add_appointment,
    appointment_row,
    company_policy,
    modifications,
)
from tests.calcom_fixtures import DAILY, calcom_env
from tests.codec_fixtures import CONVERTER
from tests.factories import make_tenant
from workflows.appointment import AppointmentWorkflow


async def test_allowed_cancel_charges_the_tier_fee_and_cancels_the_booking(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    customer = tenant.customer_ids[0]
    tiers = [{"min_hours": 0, "fee": 30}, {"min_hours": 24, "fee": 12.5}, {"min_hours": 48, "fee": 0}]
    await company_policy(sessions, tenant, "cancellation", {"fee_tiers": tiers})
    async with transaction(sessions) as session:  # the customer's stats row, bumped by the record
        now_db = datetime.now(BERLIN)
        session.add(
            AppointmentModificationStat(
                company_id=tenant.company_id,
                customer_id=customer,
                stat_type="cancel_30d",
                period_start=now_db - timedelta(days=30),
                period_end=now_db,
                count=0,
            )
        )
    starts_at = await server_now(time_skipping_env) + timedelta(hours=30)
    async with calcom_env() as env:
        booking = env.fake.book(DAILY, starts_at)
        appointment = await add_appointment(sessions, tenant, starts_at, booking_uid=booking.uid)
        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            outcome = await client.cancel(
                tenant.company_id,
                appointment,
                request_id="cancel-1",
                reason="ill",
                modified_by=Actor(type=ActorType.CUSTOMER, id=str(customer)),
            )

        assert outcome.status is ChangeStatus.APPLIED
        assert outcome.fee_charged == Decimal("12.50")
        assert outcome.policy is not None
        assert outcome.policy.sources["fee_tiers"].level == "company"
        assert booking.status == "cancelled"
        assert booking.cancellation_reason == "ill"

    assert (await appointment_row(sessions, appointment)).status == "cancelled"
    [row] = await modifications(sessions, appointment)
    assert (row.modification_type, row.within_policy, row.fee_charged) == ("cancel", True, Decimal("12.50"))
    assert (row.modified_by_type, row.modified_by_id) == ("customer", str(customer))
    assert (row.request_id, row.reason, row.customer_id) == ("cancel-1", "ill", customer)
    assert row.id == outcome.modification_id
    assert row.metadata_ is not None
    assert row.metadata_["previous"]["calcom_booking_uid"] == booking.uid
    assert 29.9 < row.metadata_["hours_notice"] < 30.1
    async with sessions() as session:
        stat = await session.scalar(
            select(AppointmentModificationStat.count).where(
                AppointmentModificationStat.customer_id == customer
            )
        )
    assert stat == 1


async def test_denied_cancel_writes_nothing_and_leaves_calcom_alone(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await company_policy(sessions, tenant, "cancellation", {"hours_before": 48})
    starts_at = await server_now(time_skipping_env) + timedelta(hours=30)
    async with calcom_env() as env:
        booking = env.fake.book(DAILY, starts_at)
        appointment = await add_appointment(sessions, tenant, starts_at, booking_uid=booking.uid)
        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            denied = await client.cancel(tenant.company_id, appointment, request_id="too-late")
            missing = await client.cancel(tenant.company_id + 1, appointment, request_id="elsewhere")

        assert denied.status is ChangeStatus.DENIED
        assert denied.reason is not None
        assert "needs 48 h notice" in denied.reason
        assert denied.policy is not None
        assert not denied.policy.allowed
        assert denied.modification_id is None
        assert missing.status is ChangeStatus.NOT_FOUND  # another company's appointment does not exist
        assert env.fake.requests == []
        assert booking.status == "accepted"

    assert (await appointment_row(sessions, appointment)).status == "scheduled"
    assert await modifications(sessions, appointment) == []


async def test_reschedule_without_calcom_then_over_the_per_appointment_limit(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await company_policy(sessions, tenant, "reschedule", {"max_reschedules_per_appointment": 1, "fee": 5})
    starts_at = await server_now(time_skipping_env) + timedelta(days=5)
    appointment = await add_appointment(sessions, tenant, starts_at)  # not booked on Cal.com
    async with (
        calcom_env() as env,
        appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client,
    ):
        moved = await client.reschedule(tenant.company_id, appointment, starts_at + timedelta(days=1))
        refused = await client.reschedule(tenant.company_id, appointment, starts_at + timedelta(days=2))
        assert env.fake.requests == []

    assert moved.status is ChangeStatus.APPLIED
    assert moved.fee_charged == Decimal("5.00")
    assert moved.starts_at == starts_at + timedelta(days=1)
    assert refused.status is ChangeStatus.DENIED
    assert refused.reason is not None
    assert refused.reason.startswith("reschedule limit reached: 1 of 1 for this appointment")
    row = await appointment_row(sessions, appointment)
    assert (row.starts_at, row.ends_at) == (
        starts_at + timedelta(days=1),
        starts_at + timedelta(days=1, minutes=30),
    )
    assert [m.modification_type for m in await modifications(sessions, appointment)] == ["reschedule"]


async def test_reschedule_moves_the_booking_and_stores_the_new_uid(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """The fake's calendar lives in March 2030 (tests/calcom_fixtures.py): well ahead of the server's now."""
    tenant = await make_tenant(sessions)
    starts_at = datetime(2030, 3, 5, 9, 0, tzinfo=BERLIN)
    async with calcom_env() as env:
        old = env.fake.book(DAILY, starts_at)
        appointment = await add_appointment(sessions, tenant, starts_at, booking_uid=old.uid)
        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            closed = await client.reschedule(
                tenant.company_id, appointment, datetime(2030, 3, 5, 15, 0, tzinfo=BERLIN)
            )
            moved = await client.reschedule(
                tenant.company_id,
                appointment,
                datetime(2030, 3, 5, 10, 30, tzinfo=BERLIN),
                modified_by=Actor(type=ActorType.STAFF, id="desk"),
            )
            history = await client.appointment_handle(tenant.company_id, appointment).fetch_history()
        # The sandboxed workflow replays its own history (no nondeterminism, no I/O import).
        await Replayer(workflows=[AppointmentWorkflow], data_converter=CONVERTER).replay_workflow(history)

        # 15:00 is outside the event type's hours: Cal.com's 400 ends the change cleanly.
        assert closed.status is ChangeStatus.REFUSED
        assert closed.error_type == "CalcomBadRequest"
        assert closed.reason is not None
        assert "Cal.com refused the reschedule" in closed.reason

        assert moved.status is ChangeStatus.APPLIED
        assert moved.fee_charged == Decimal("0.00")  # no policy
        new = env.fake.bookings[moved.calcom_booking_uid or ""]
        assert new.uid != old.uid
        assert new.rescheduled_from_uid == old.uid
        assert new.status == "accepted"
        assert old.status == "cancelled"

    row = await appointment_row(sessions, appointment)
    assert row.calcom_booking_uid == new.uid
    assert (row.starts_at, row.ends_at) == (
        datetime(2030, 3, 5, 10, 30, tzinfo=BERLIN),
        datetime(2030, 3, 5, 11, 0, tzinfo=BERLIN),
    )
    assert row.status == "scheduled"
    [recorded] = await modifications(sessions, appointment)
    assert (recorded.modified_by_type, recorded.modified_by_id) == ("staff", "desk")
    assert recorded.metadata_ is not None
    assert recorded.metadata_["previous"]["calcom_booking_uid"] == old.uid


async def test_a_retried_request_records_one_modification_and_calls_calcom_once(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    starts_at = await server_now(time_skipping_env) + timedelta(days=3)
    async with calcom_env() as env:
        booking = env.fake.book(DAILY, starts_at)
        appointment = await add_appointment(sessions, tenant, starts_at, booking_uid=booking.uid)
        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            first = await client.cancel(tenant.company_id, appointment, request_id="twice")
            retried = await client.cancel(tenant.company_id, appointment, request_id="twice")
            with pytest.raises(AppointmentChangeError) as reused:
                await client.reschedule(
                    tenant.company_id, appointment, starts_at + timedelta(days=1), request_id="twice"
                )

        assert first.status is ChangeStatus.APPLIED
        assert retried == first  # the stored outcome, not a second run ("already cancelled")
        assert env.fake.count(f"/v2/bookings/{booking.uid}/cancel") == 1
        assert reused.value.kind == REQUEST_ID_REUSED

    [row] = await modifications(sessions, appointment)
    assert row.id == first.modification_id


@pytest.mark.devserver
async def test_concurrent_submissions_of_one_request_join_one_run(
    dev_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """On the dev server: the time-skipping test server 1.40 times out a run joined by a concurrent start
    with `USE_EXISTING`, which the real server does not."""
    tenant = await make_tenant(sessions)
    starts_at = await server_now(dev_env) + timedelta(days=3)
    async with calcom_env() as env:
        booking = env.fake.book(DAILY, starts_at)
        appointment = await add_appointment(sessions, tenant, starts_at, booking_uid=booking.uid)
        async with appointment_worker(dev_env, sessions, task_queue, env.client) as client:
            outcomes = await asyncio.gather(
                *(client.cancel(tenant.company_id, appointment, request_id="at-once") for _ in range(3))
            )

        assert outcomes[0].status is ChangeStatus.APPLIED
        assert outcomes[0] == outcomes[1] == outcomes[2]
        assert env.fake.count(f"/v2/bookings/{booking.uid}/cancel") == 1

    assert len(await modifications(sessions, appointment)) == 1


async def test_calcom_500_then_ok_records_exactly_one(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """The client gives up after one attempt, so the 500 reaches Temporal's retry policy."""
    tenant = await make_tenant(sessions)
    starts_at = await server_now(time_skipping_env) + timedelta(days=3)
    async with calcom_env(max_attempts=1) as env:
        booking = env.fake.book(DAILY, starts_at)
        appointment = await add_appointment(sessions, tenant, starts_at, booking_uid=booking.uid)
        env.fake.fail_next(500)
        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            outcome = await client.cancel(tenant.company_id, appointment, request_id="flaky")

        assert outcome.status is ChangeStatus.APPLIED
        cancel_path = f"/v2/bookings/{booking.uid}/cancel"
        assert [r.status for r in env.fake.requests if r.path == cancel_path] == [500, 200]
        assert booking.status == "cancelled"

    assert [m.request_id for m in await modifications(sessions, appointment)] == ["flaky"]
