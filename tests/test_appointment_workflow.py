"""`AppointmentWorkflow`, one per appointment: racing requests applied in order, Cal.com answers lost
after Cal.com acted (the fake answers after the client's timeout) read back instead of refused, a request
written down before a crash resumed, request ids reused for another change refused, and the client's
deadline. Real PostgreSQL, the fake Cal.com over HTTP, Temporal's time-skipping server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from models.appointment_workflow import BeginChange, BeginStep
from models.appointments import AppointmentChangeRequest, ChangeStatus
from models.policies import ModificationType
from starter.appointments import REQUEST_ID_REUSED, AppointmentChangeError, AppointmentClient
from starter.deadlines import TemporalTimeout
from store.appointment_changes import begin_change
from store.db import transaction
from store.policies import PolicyResolver
from tests.api_fixtures import running_api
from tests.calcom_fixtures import DAILY, calcom_env
from tests.codec_fixtures import CONVERTER
from tests.factories import make_tenant
from tests.test_appointment_change import (
    Sessions,
    add_appointment,
    appointment_row,
    appointment_worker,
    company_policy,
    modifications,
)
from worker import WORKFLOW_RUNNER
from workflows.appointment import AppointmentWorkflow

BERLIN = ZoneInfo("Europe/Berlin")
# Inside the fake's calendar (tests/calcom_fixtures.py: event type DAILY, 09:00-12:00 Berlin, March 2030).
NINE = datetime(2030, 3, 5, 9, 0, tzinfo=BERLIN)
HALF_TEN = datetime(2030, 3, 5, 10, 30, tzinfo=BERLIN)
ELEVEN = datetime(2030, 3, 5, 11, 0, tzinfo=BERLIN)


async def test_two_cancels_of_one_customer_racing_on_two_appointments_pass_a_quota_of_one_once(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await company_policy(sessions, tenant, "cancellation", {"max_cancellations_per_month": 1})
    first = await add_appointment(sessions, tenant, NINE)
    second = await add_appointment(sessions, tenant, NINE + timedelta(days=1))
    async with (
        calcom_env() as env,
        appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client,
    ):
        outcomes = await asyncio.gather(
            client.cancel(tenant.company_id, first, request_id="one"),
            client.cancel(tenant.company_id, second, request_id="two"),
        )

    assert sorted(o.status.value for o in outcomes) == ["applied", "denied"]
    [denied] = [o for o in outcomes if o.status is ChangeStatus.DENIED]
    assert denied.reason is not None
    assert denied.reason.startswith("cancellation limit reached: 1 of 1")
    statuses = [(await appointment_row(sessions, a)).status for a in (first, second)]
    assert sorted(statuses) == ["cancelled", "scheduled"]


async def test_a_cancel_racing_a_reschedule_waits_for_it_and_leaves_no_live_booking(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """The cancel arrives while Cal.com is still making the reschedule (its answer held back): it waits,
    then cancels the booking the reschedule made. Nothing lives on in Cal.com for a cancelled appointment."""
    tenant = await make_tenant(sessions)
    async with calcom_env() as env:
        old = env.fake.book(DAILY, NINE)
        appointment = await add_appointment(sessions, tenant, NINE, booking_uid=old.uid)
        env.fake.answer_late(1.0, path_suffix="/reschedule")
        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            moving = asyncio.ensure_future(
                client.reschedule(tenant.company_id, appointment, HALF_TEN, request_id="move")
            )
            await asyncio.sleep(0.5)
            cancelled = await client.cancel(tenant.company_id, appointment, request_id="cancel")
            moved = await moving
            history = await client.appointment_handle(tenant.company_id, appointment).fetch_history()

        assert moved.status is ChangeStatus.APPLIED
        assert cancelled.status is ChangeStatus.APPLIED
        assert cancelled.calcom_booking_uid == moved.calcom_booking_uid != old.uid
        assert {booking.status for booking in env.fake.bookings.values()} == {"cancelled"}
    await Replayer(
        workflows=[AppointmentWorkflow], data_converter=CONVERTER, workflow_runner=WORKFLOW_RUNNER
    ).replay_workflow(history)
    row = await appointment_row(sessions, appointment)
    assert (row.status, row.calcom_booking_uid) == ("cancelled", moved.calcom_booking_uid)
    assert [m.request_id for m in await modifications(sessions, appointment)] == ["move", "cancel"]


async def test_a_reschedule_whose_answer_was_lost_is_read_back_not_sent_again(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """Cal.com moves the booking but answers after the client gave up. The retry reads the old booking
    back and follows it to the new one, instead of rescheduling the old uid again (a 400, "refused")."""
    tenant = await make_tenant(sessions)
    async with calcom_env(timeout_seconds=0.5, max_attempts=1) as env:
        old = env.fake.book(DAILY, NINE)
        appointment = await add_appointment(sessions, tenant, NINE, booking_uid=old.uid)
        env.fake.answer_late(1.5, path_suffix="/reschedule")
        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            moved = await client.reschedule(tenant.company_id, appointment, HALF_TEN, request_id="lost")

        assert moved.status is ChangeStatus.APPLIED
        assert env.fake.count(f"/v2/bookings/{old.uid}/reschedule") == 1
        assert env.fake.count(f"/v2/bookings/{old.uid}") >= 1  # read back
        new = env.fake.bookings[moved.calcom_booking_uid or ""]
        assert (new.rescheduled_from_uid, new.status, old.status) == (old.uid, "accepted", "cancelled")
    row = await appointment_row(sessions, appointment)
    assert (row.starts_at, row.calcom_booking_uid) == (HALF_TEN, new.uid)


async def test_a_cancel_whose_answer_was_lost_is_read_back_before_a_retry(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    await company_policy(sessions, tenant, "cancellation", {"fee": 9})
    async with calcom_env(timeout_seconds=0.5, max_attempts=1) as env:
        booking = env.fake.book(DAILY, NINE)
        appointment = await add_appointment(sessions, tenant, NINE, booking_uid=booking.uid)
        env.fake.answer_late(1.5, path_suffix="/cancel")
        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            cancelled = await client.cancel(tenant.company_id, appointment, request_id="lost")

        assert cancelled.status is ChangeStatus.APPLIED
        assert str(cancelled.fee_charged) == "9.00"
        assert env.fake.count(f"/v2/bookings/{booking.uid}/cancel") == 1
        assert booking.status == "cancelled"
    assert (await appointment_row(sessions, appointment)).status == "cancelled"


async def test_a_request_written_down_before_a_crash_is_resumed_by_reading_calcom_back(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """The run wrote the request down and Cal.com moved the booking, then the run was lost. The same
    request sent again is not decided anew and not sent to Cal.com again: the move is found and recorded."""
    tenant = await make_tenant(sessions)
    asked = datetime.now(UTC)
    async with calcom_env() as env:
        old = env.fake.book(DAILY, NINE)
        appointment = await add_appointment(sessions, tenant, NINE, booking_uid=old.uid)
        request = AppointmentChangeRequest(
            request_id="crashed",
            company_id=tenant.company_id,
            appointment_id=appointment,
            change=ModificationType.RESCHEDULE,
            new_start=ELEVEN,
            requested_at=asked,
        )
        async with transaction(sessions) as session:
            begun = await begin_change(
                PolicyResolver(sessions), session, BeginChange(request=request, workflow_id="lost-run")
            )
        assert begun.step is BeginStep.ACT
        await env.client.reschedule_booking(old.uid, ELEVEN)  # Cal.com acted; its answer was lost

        async with appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client:
            outcome = await client.submit(request)

        assert outcome.status is ChangeStatus.APPLIED
        assert outcome.decided_at == asked
        assert env.fake.count(f"/v2/bookings/{old.uid}/reschedule") == 1
        assert outcome.calcom_booking_uid == old.rescheduled_to_uid
    assert (await appointment_row(sessions, appointment)).starts_at == ELEVEN


async def test_a_request_id_reused_for_another_time_is_refused_and_the_same_body_answers(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    appointment = await add_appointment(sessions, tenant, NINE)
    async with (
        calcom_env() as env,
        appointment_worker(time_skipping_env, sessions, task_queue, env.client) as client,
    ):
        first = await client.reschedule(tenant.company_id, appointment, HALF_TEN, request_id="k")
        with pytest.raises(AppointmentChangeError) as reused:
            await client.reschedule(tenant.company_id, appointment, ELEVEN, request_id="k")
        again = await client.reschedule(tenant.company_id, appointment, HALF_TEN, request_id="k")

    assert reused.value.kind == REQUEST_ID_REUSED
    assert "already used for the reschedule of appointment" in str(reused.value)
    assert ELEVEN.isoformat() in str(reused.value)
    assert again == first
    assert (await appointment_row(sessions, appointment)).starts_at == HALF_TEN


async def test_http_same_key_other_body_is_422_same_body_the_stored_outcome(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    appointment = await add_appointment(sessions, tenant, NINE)
    async with running_api(time_skipping_env.client, sessions, task_queue) as api:
        service = api.http(await api.key("service", tenant))
        path = f"/v1/appointments/{appointment}/reschedule"
        key = {"Idempotency-Key": "mv-1"}
        moved = await service.post(path, json={"new_start": HALF_TEN.isoformat()}, headers=key)
        other = await service.post(path, json={"new_start": ELEVEN.isoformat()}, headers=key)
        same = await service.post(path, json={"new_start": HALF_TEN.isoformat()}, headers=key)

    assert moved.status_code == 200, moved.text
    assert other.status_code == 422, other.text
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert "is a different change" in other.json()["detail"]
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert same.status_code == 200, same.text
    assert same.json() == moved.json()


async def test_calls_into_temporal_have_a_deadline(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    """No worker serves the queue: the call ends at the client's deadline with `TemporalTimeout`, which
    the API answers 504 with Retry-After, like the callbacks."""
    tenant = await make_tenant(sessions)
    appointment = await add_appointment(sessions, tenant, NINE)
    stuck = AppointmentClient(time_skipping_env.client, f"{task_queue}-nobody", timeout=0.5)
    with pytest.raises(TemporalTimeout):
        await stuck.cancel(tenant.company_id, appointment + 1, request_id="waits")

    async with running_api(time_skipping_env.client, sessions, task_queue) as api:
        api.deps.appointments = stuck
        admin = api.http(await api.key("admin", tenant))
        answer = await admin.post(f"/v1/appointments/{appointment + 2}/cancel")
    assert answer.status_code == 504, answer.text
    assert answer.json()["type"] == "/problems/engine-timeout"
    assert "Retry-After" in answer.headers
