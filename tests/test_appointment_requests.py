"""The database side of the per-appointment workflow (store/appointment_changes.py) on real PostgreSQL:
the quota decided under a per-customer lock with the pending requests counted, a request id reused for
another change, and a Cal.com webhook echoing a change that is still being applied."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from models.appointment_workflow import BeginChange, BeginStep, BegunChange, FinishChange
from models.appointments import AppointmentChangeRequest, ChangeStatus
from models.calcom_bookings import BookingChange, BookingEvent
from models.policies import ModificationType
from store.appointment_changes import begin_change, finish_change
from store.calcom_bookings import apply_booking_event
from store.db import transaction
from store.policies import PolicyResolver
from tests.factories import make_tenant
from tests.test_appointment_change import (
    BERLIN,
    Sessions,
    add_appointment,
    appointment_row,
    company_policy,
    modifications,
)

ASKED = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


def request(appointment_id: int, company_id: int, request_id: str, **fields: Any) -> AppointmentChangeRequest:
    values: dict[str, Any] = {
        "request_id": request_id,
        "company_id": company_id,
        "appointment_id": appointment_id,
        "change": ModificationType.CANCEL,
        "requested_at": ASKED,
    }
    values.update(fields)
    return AppointmentChangeRequest(**values)


async def begin(sessions: Sessions, change: AppointmentChangeRequest) -> BegunChange:
    async with transaction(sessions) as session:
        return await begin_change(
            PolicyResolver(sessions), session, BeginChange(request=change, workflow_id="test")
        )


async def test_two_cancels_of_one_customer_cannot_both_pass_a_quota_of_one(sessions: Sessions) -> None:
    """The second decision waits for the customer's lock and counts the first, still pending, request:
    refused by the quota, although neither is recorded as a modification yet."""
    tenant = await make_tenant(sessions)
    await company_policy(sessions, tenant, "cancellation", {"max_cancellations_per_month": 1})
    first = await add_appointment(sessions, tenant, datetime(2030, 3, 5, 9, 0, tzinfo=BERLIN))
    second = await add_appointment(sessions, tenant, datetime(2030, 3, 6, 9, 0, tzinfo=BERLIN))
    resolver = PolicyResolver(sessions)

    async with transaction(sessions) as session:
        won = await begin_change(
            resolver,
            session,
            BeginChange(request=request(first, tenant.company_id, "a"), workflow_id="test"),
        )
        racing = asyncio.ensure_future(begin(sessions, request(second, tenant.company_id, "b")))
        await asyncio.sleep(0.5)
        assert not racing.done()  # waits for the customer's lock until the first decision commits
    lost = await racing

    assert won.step is BeginStep.ACT
    assert won.plan is not None
    assert won.plan.policy.allowed
    assert lost.step is BeginStep.ANSWERED
    assert lost.outcome is not None
    assert lost.outcome.status is ChangeStatus.DENIED
    assert lost.outcome.reason is not None
    assert lost.outcome.reason.startswith("cancellation limit reached: 1 of 1")
    assert lost.outcome.decided_at == ASKED
    # Asked again, the refused request answers from its row; the first one resumes where it was.
    assert (await begin(sessions, request(second, tenant.company_id, "b"))).outcome == lost.outcome
    resumed = await begin(sessions, request(first, tenant.company_id, "a"))
    assert resumed.step is BeginStep.RESUME
    assert resumed.plan is not None
    assert resumed.plan.policy == won.plan.policy


async def test_the_decision_is_made_at_requested_at(sessions: Sessions) -> None:
    """Not at the time the engine gets to it: the fee of a request made 25 h before the start is the
    24 h tier's, whenever it is decided."""
    tenant = await make_tenant(sessions)
    tiers = [{"min_hours": 0, "fee": 30}, {"min_hours": 24, "fee": 12.5}]
    await company_policy(sessions, tenant, "cancellation", {"fee_tiers": tiers})
    appointment = await add_appointment(sessions, tenant, ASKED + timedelta(hours=25))

    begun = await begin(sessions, request(appointment, tenant.company_id, "early"))

    assert begun.plan is not None
    assert begun.plan.policy.fee == Decimal("12.50")
    assert begun.plan.policy.hours_notice == 25.0


async def test_a_request_id_reused_for_another_time_is_refused_with_both_changes_named(
    sessions: Sessions,
) -> None:
    tenant = await make_tenant(sessions)
    appointment = await add_appointment(sessions, tenant, datetime(2030, 3, 5, 9, 0, tzinfo=BERLIN))
    moving = {"change": ModificationType.RESCHEDULE}
    first = request(appointment, tenant.company_id, "k", new_start=ASKED + timedelta(days=5), **moving)
    other = request(appointment, tenant.company_id, "k", new_start=ASKED + timedelta(days=6), **moving)

    assert (await begin(sessions, first)).step is BeginStep.ACT
    reused = await begin(sessions, other)

    assert reused.reused is not None
    assert "request id 'k' was already used for the reschedule of appointment" in reused.reused
    assert "is a different change" in reused.reused
    assert (await begin(sessions, first)).step is BeginStep.RESUME  # the same body: the same request


async def test_a_calcom_webhook_echoing_a_pending_cancel_leaves_it_to_the_request(sessions: Sessions) -> None:
    """Cal.com's webhook about the cancel the engine just sent may arrive before the engine records it.
    Applied first, it would close the appointment under the request, which would then be refused and
    charge no fee although Cal.com cancelled for it. It is ignored; the request's record applies it."""
    tenant = await make_tenant(sessions)
    await company_policy(sessions, tenant, "cancellation", {"fee": 7})
    appointment = await add_appointment(
        sessions, tenant, datetime(2030, 3, 5, 9, 0, tzinfo=BERLIN), booking_uid="uid-1"
    )
    cancel = request(appointment, tenant.company_id, "c1")
    begun = await begin(sessions, cancel)
    assert begun.plan is not None
    echo = BookingEvent(
        trigger="BOOKING_CANCELLED",
        change=BookingChange.CANCELLED,
        occurred_at=datetime.now(UTC),
        uid="uid-1",
        organizer_email="host@example.com",
        changed_by="host@example.com",
    )

    async with transaction(sessions) as session:
        applied = await apply_booking_event(
            session, tenant.company_id, echo, resolver=PolicyResolver(sessions)
        )
    assert applied.outcome.value == "ignored"
    assert "requested here" in applied.detail
    assert (await appointment_row(sessions, appointment)).status == "scheduled"

    async with transaction(sessions) as session:
        finished = await finish_change(
            session, FinishChange(request=cancel, plan=begun.plan, workflow_id="test")
        )
    assert finished.outcome.status is ChangeStatus.APPLIED
    assert finished.outcome.fee_charged == Decimal("7.00")
    assert (await appointment_row(sessions, appointment)).status == "cancelled"
    [row] = await modifications(sessions, appointment)
    assert row.request_id == "c1"
    # Settled: the same webhook now finds nothing pending and nothing to change.
    async with transaction(sessions) as session:
        again = await apply_booking_event(session, tenant.company_id, echo, resolver=PolicyResolver(sessions))
    assert "requested here" not in again.detail
