"""Appointment changes when something fails: a Cal.com outage fails the run with nothing recorded and the
same request runs again once Cal.com is back; the record activity answers a retried attempt from its row
and never cancels twice; a change recorded before the notification step replays on today's workflow.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Replayer

from activities.appointments import AppointmentActivities
from devstack.calcom_fake import serve_fake
from models.appointments import ChangeStatus, RecordAppointmentChange
from models.policies import ModificationType, PolicyResult
from starter.appointments import AppointmentChangeError
from store.policies import PolicyResolver
from tests.appointment_fixtures import BERLIN, appointment_worker, server_now, skipping
from tests.appointment_records import Sessions, add_appointment, modifications
from tests.calcom_fixtures import DAILY, calcom_env, make_client
from tests.codec_fixtures import CONVERTER
from tests.factories import make_tenant
from tests.temporal_servers import time_skipping_server
from worker import SANDBOXED_RUNNER
from workflows.appointment_change import AppointmentChangeWorkflow


@pytest.fixture(scope="module")
async def own_clock() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own: after the failed run below, the test server (1.40) was seen to move
    its clock about ten years ahead (3,650 days: a default run timeout, it seems). That jump must not leak
    into the session's shared server, whose other tests read its clock."""
    async with time_skipping_server() as env:
        yield env


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
