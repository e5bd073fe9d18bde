"""Cancel and reschedule through the per-appointment `AppointmentWorkflow`: real PostgreSQL, the fake
Cal.com over HTTP and Temporal's time-skipping server, driven through the typed client
(starter/appointments.py).

Appointment times are taken from the test server's clock (`get_current_time`); the client dates each
request by the wall clock (`requested_at`), which the policy is decided at.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHistory
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from activities.appointments import AppointmentActivities
from calcom.client import CalcomClient
from config import Settings
from devstack.calcom_fake import serve_fake
from devstack.temporal import binary
from models.appointments import Actor, ActorType, ChangeStatus, RecordAppointmentChange
from models.policies import ModificationType, PolicyResult
from models.tables import Appointment, AppointmentModification, AppointmentModificationStat
from starter.appointments import REQUEST_ID_REUSED, AppointmentChangeError, AppointmentClient
from store.db import transaction
from store.policies import PolicyResolver, set_policy
from tests.appointment_fixtures import skipping
from tests.calcom_fixtures import DAILY, calcom_env, make_client
from tests.codec_fixtures import CONVERTER
from tests.factories import Tenant, make_tenant
from worker import SANDBOXED_RUNNER, build_worker
from workflows.appointment import AppointmentWorkflow
from workflows.appointment_change import AppointmentChangeWorkflow

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


@pytest.fixture(scope="module")
async def own_clock() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own: after the failed run below, the test server (1.40) was seen to move
    its clock about ten years ahead (3,650 days: a default run timeout, it seems). That jump must not leak
    into the session's shared server, whose other tests read its clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER, test_server_existing_path=binary("temporal-test-server")
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_a_calcom_outage_fails_the_run_and_the_same_request_runs_again(
    own_clock: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """Nothing listens on the worker's Cal.com port: the retries run out (skipped time), the request fails
    with nothing recorded, and resubmitting the request id once Cal.com is back (the fake now answers on
    that port) settles it: read back, cancelled, recorded once.

    One worker throughout: the appointment's workflow stays open between the two calls, and the test
    server (unlike Temporal) never hands a stopped worker's sticky workflow task to another worker."""
    tenant = await make_tenant(sessions)
    starts_at = await server_now(own_clock) + timedelta(days=3)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    async with calcom_env() as env:
        booking = env.fake.book(DAILY, starts_at)
        appointment = await add_appointment(sessions, tenant, starts_at, booking_uid=booking.uid)
        async with (
            make_client(f"http://127.0.0.1:{dead_port}", max_attempts=1) as calcom,
            appointment_worker(own_clock, sessions, task_queue, calcom) as client,
        ):
            with pytest.raises(AppointmentChangeError) as down:
                await skipping(own_clock, client.cancel(tenant.company_id, appointment, request_id="outage"))
            assert down.value.kind == "CalcomUnavailable"
            assert "nothing was recorded" in str(down.value)
            assert await modifications(sessions, appointment) == []
            assert booking.status == "accepted"

            async with serve_fake(env.fake, port=dead_port):
                outcome = await client.cancel(tenant.company_id, appointment, request_id="outage")
            assert outcome.status is ChangeStatus.APPLIED
            assert booking.status == "cancelled"

    assert [m.request_id for m in await modifications(sessions, appointment)] == ["outage"]


async def test_the_record_activity_is_idempotent_and_never_cancels_twice(sessions: Sessions) -> None:
    """An attempt retried after its commit answers from the stored row; a second request to cancel an
    appointment that another request cancelled meanwhile writes nothing (one fee, one count)."""
    tenant = await make_tenant(sessions)
    appointment = await add_appointment(sessions, tenant, datetime(2030, 3, 5, 9, 0, tzinfo=BERLIN))
    activities = AppointmentActivities(sessions, PolicyResolver(sessions))
    run = ActivityEnvironment().run
    policy = PolicyResult(allowed=True, fee=Decimal("10.00"), currency="EUR")

    def command(request_id: str) -> RecordAppointmentChange:
        return RecordAppointmentChange(
            request_id=request_id,
            company_id=tenant.company_id,
            appointment_id=appointment,
            change=ModificationType.CANCEL,
            policy=policy,
        )

    first = await run(activities.record_appointment_change, command("a"))
    retried = await run(activities.record_appointment_change, command("a"))
    racing = await run(activities.record_appointment_change, command("b"))

    assert (first.created, first.status, first.conflict) == (True, "cancelled", None)
    assert (retried.created, retried.modification_id) == (False, first.modification_id)
    assert racing.modification_id is None
    assert racing.conflict == "the appointment is cancelled"
    [row] = await modifications(sessions, appointment)
    assert row.fee_charged == Decimal("10.00")


async def test_a_change_recorded_before_the_notification_step_still_replays() -> None:
    """Changes that ran before `appointment-notify-v1` existed (a plan without the people it concerns, no
    notification step) replay on today's workflow: the patch keeps them off the new path."""
    path = Path(__file__).parent / "histories" / "appointment_change" / "cancel_before_notify.json"
    history = WorkflowHistory.from_json("appointment-change-before-notify", path.read_text())
    result = await Replayer(
        workflows=[AppointmentChangeWorkflow],
        data_converter=CONVERTER,
        workflow_runner=SANDBOXED_RUNNER,
    ).replay_workflow(history)
    assert result.replay_failure is None
