"""Cal.com bookings in, through HTTP: signed webhooks against the real app and PostgreSQL.

A signed BOOKING_CREATED makes one appointment (customer matched or created, service by event type, branch
from the service); the same delivery again changes nothing; a bad signature is a 401 that writes nothing;
out-of-order events never move an appointment back; a customer's cancellation in Cal.com counts against
the monthly quota.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from temporalio.testing import WorkflowEnvironment

from models.tables import AppointmentModification, CalcomWebhookDelivery, Company, Customer
from rules.calcom_webhooks import SIGNATURE_HEADER, sign
from store.db import transaction
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.calcom_webhook_fixtures import (
    HOST_EMAIL,
    SECRET,
    appointment_by_uid,
    booking,
    calcom_tenant,
    counts,
    deliver,
    envelope,
)
from tests.factories import make_tenant


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


def soon(days: float = 3) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


async def test_signed_booking_created_makes_one_appointment_and_a_redelivery_changes_nothing(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await calcom_tenant(sessions)
    http = api.http()
    before = await counts(sessions, tenant.company_id)
    start = soon()
    body = envelope(
        "BOOKING_CREATED", datetime.now(UTC), booking("uid-created-1", start, phone="+49 30 9876543")
    )

    first = await deliver(http, tenant.company_id, body)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "created"
    stored = await appointment_by_uid(sessions, tenant.company_id, "uid-created-1")
    assert stored is not None
    assert (stored.status, stored.starts_at, stored.ends_at) == (
        "confirmed",
        start,
        start + timedelta(minutes=30),
    )
    assert (stored.service_id, stored.branch_id) == (tenant.service_ids[0], tenant.branch_ids[0])
    async with sessions() as session:
        customer = await session.get(Customer, stored.customer_id)
    assert customer is not None
    assert (customer.name, customer.email, customer.phone_number) == (
        "Zoe Booker",
        "zoe@example.org",
        "+49309876543",
    )

    again = await deliver(http, tenant.company_id, body)
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["appointment_id"] == stored.id
    after = await counts(sessions, tenant.company_id)
    assert after == {**before, "appointments": 1, "customers": before["customers"] + 1, "deliveries": 1}

    # The same booking reported again (a new delivery of the same state): matched, nothing to change.
    later = envelope("BOOKING_CREATED", datetime.now(UTC), booking("uid-created-1", start))
    assert (await deliver(http, tenant.company_id, later)).json()["outcome"] == "unchanged"
    # The next booking of the same person (by email) is the same customer.
    other = envelope("BOOKING_CREATED", datetime.now(UTC), booking("uid-created-2", soon(5)))
    assert (await deliver(http, tenant.company_id, other)).json()["outcome"] == "created"
    second = await appointment_by_uid(sessions, tenant.company_id, "uid-created-2")
    assert second is not None
    assert second.customer_id == stored.customer_id


async def test_a_bad_signature_is_401_and_writes_nothing(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await calcom_tenant(sessions)
    without_secret = await make_tenant(sessions, name="No Cal.com")
    http = api.http()
    body = envelope("BOOKING_CREATED", datetime.now(UTC), booking("uid-forged", soon()))
    path = f"/v1/calcom/webhooks/{tenant.company_id}"
    before = await counts(sessions, tenant.company_id)

    refused = [
        await deliver(http, tenant.company_id, body, secret="not-the-secret"),
        await deliver(http, tenant.company_id, body, secret=None),
        await http.post(path, content=body, headers={SIGNATURE_HEADER: "no-secret-provided"}),
        await http.post(path, content=body, headers={SIGNATURE_HEADER: "sha256=" + sign(SECRET, body)}),
        # The signature covers the exact bytes: a changed body under the original signature fails.
        await http.post(
            path,
            content=body.replace(b"uid-forged", b"uid-forgeD"),
            headers={SIGNATURE_HEADER: sign(SECRET, body)},
        ),
        await deliver(http, without_secret.company_id, body),
        await deliver(http, 987654, body),
    ]
    for response in refused:
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/bad-signature"
    assert await counts(sessions, tenant.company_id) == before
    assert (await counts(sessions, without_secret.company_id))["deliveries"] == 0

    # Upper-case hex is the same signature; the genuine delivery goes through.
    genuine = await http.post(path, content=body, headers={SIGNATURE_HEADER: sign(SECRET, body).upper()})
    assert genuine.json()["outcome"] == "created"


async def test_a_reschedule_then_a_late_created_for_the_old_uid_stays_at_the_new_time(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await calcom_tenant(sessions)
    http = api.http()
    old_start, new_start = soon(3), soon(4)
    booked_at = datetime.now(UTC) - timedelta(minutes=10)
    moved_at = booked_at + timedelta(minutes=5)
    rescheduled = envelope(
        "BOOKING_RESCHEDULED",
        moved_at,
        booking(
            "uid-new",
            new_start,
            rescheduleUid="uid-old",
            rescheduleStartTime=old_start.isoformat(),
            rescheduledBy="zoe@example.org",
        ),
    )
    late_created = envelope("BOOKING_CREATED", booked_at, booking("uid-old", old_start))

    assert (await deliver(http, tenant.company_id, rescheduled)).json()["outcome"] == "created"
    late = await deliver(http, tenant.company_id, late_created)
    assert late.json()["outcome"] == "ignored", late.text
    stored = await appointment_by_uid(sessions, tenant.company_id, "uid-new")
    assert stored is not None
    assert (stored.starts_at, stored.status) == (new_start, "confirmed")
    assert await appointment_by_uid(sessions, tenant.company_id, "uid-old") is None
    assert (await counts(sessions, tenant.company_id))["appointments"] == 1

    # Even a "newer" event about the old uid cannot move it back: that booking was replaced.
    newer_old = envelope("BOOKING_CREATED", datetime.now(UTC), booking("uid-old", old_start))
    assert (await deliver(http, tenant.company_id, newer_old)).json()["outcome"] == "ignored"
    # Another reschedule, this time in order, moves it again and is one more modification.
    third = soon(6)
    again = envelope(
        "BOOKING_RESCHEDULED",
        datetime.now(UTC),
        booking("uid-newest", third, rescheduleUid="uid-new", rescheduledBy="zoe@example.org"),
    )
    assert (await deliver(http, tenant.company_id, again)).json()["outcome"] == "updated"
    moved = await appointment_by_uid(sessions, tenant.company_id, "uid-newest")
    assert moved is not None
    assert (moved.id, moved.starts_at) == (stored.id, third)
    async with sessions() as session:
        kinds = list(
            await session.scalars(
                select(AppointmentModification.modified_by_type).where(
                    AppointmentModification.appointment_id == stored.id,
                    AppointmentModification.modification_type == "reschedule",
                )
            )
        )
    assert kinds == ["calcom", "calcom"]


async def test_events_out_of_order_never_move_an_appointment_back(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await calcom_tenant(sessions)
    http = api.http()
    start = soon()
    created_at = datetime.now(UTC) - timedelta(minutes=3)
    cancelled = envelope(
        "BOOKING_CANCELLED",
        created_at + timedelta(minutes=1),
        booking("uid-ooo", start, status="CANCELLED", cancelledBy=HOST_EMAIL, cancellationReason="host ill"),
    )
    created = envelope("BOOKING_CREATED", created_at, booking("uid-ooo", start))
    assert (await deliver(http, tenant.company_id, cancelled)).json()["outcome"] == "created"
    assert (await deliver(http, tenant.company_id, created)).json()["outcome"] == "ignored"
    stored = await appointment_by_uid(sessions, tenant.company_id, "uid-ooo")
    assert stored is not None
    assert stored.status == "cancelled"
    # The host cancelled: recorded on the appointment, not against the customer's quota.
    assert (await counts(sessions, tenant.company_id))["modifications"] == 0


async def test_a_customer_cancellation_in_calcom_counts_against_the_monthly_quota(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await calcom_tenant(sessions)
    admin = api.http(await api.key("admin", tenant))
    put = await admin.put(
        f"/v1/policies/company/{tenant.company_id}/cancellation",
        json={"config": {"max_cancellations_per_month": 1}},
    )
    assert put.status_code == 200, put.text
    http = api.http()
    booked_at = datetime.now(UTC) - timedelta(minutes=2)
    for uid, days in (("uid-q1", 3), ("uid-q2", 5)):
        body = envelope("BOOKING_CREATED", booked_at, booking(uid, soon(days)))
        assert (await deliver(http, tenant.company_id, body)).json()["outcome"] == "created"
    first = await appointment_by_uid(sessions, tenant.company_id, "uid-q1")
    assert first is not None
    quota = (await admin.get(f"/v1/customers/{first.customer_id}/quota")).json()
    assert quota["cancellations_remaining"] == 1

    cancel = envelope(
        "BOOKING_CANCELLED",
        datetime.now(UTC),
        booking(
            "uid-q1", soon(3), status="CANCELLED", cancelledBy="zoe@example.org", cancellationReason="sick"
        ),
    )
    answer = await deliver(http, tenant.company_id, cancel)
    assert answer.json()["outcome"] == "updated", answer.text
    assert (await deliver(http, tenant.company_id, cancel)).json()["outcome"] == "duplicate"
    async with sessions() as session:
        recorded = list(
            await session.scalars(
                select(AppointmentModification).where(AppointmentModification.appointment_id == first.id)
            )
        )
    assert [
        (m.modification_type, m.modified_by_type, m.modified_by_id, m.within_policy) for m in recorded
    ] == [("cancel", "calcom", "attendee", True)]
    assert recorded[0].reason == "sick"
    quota = (await admin.get(f"/v1/customers/{first.customer_id}/quota")).json()
    assert quota["cancellations_remaining"] == 0
    second = await appointment_by_uid(sessions, tenant.company_id, "uid-q2")
    assert second is not None
    denied = await admin.post(f"/v1/appointments/{second.id}/cancel", json={})
    assert denied.status_code == 409, denied.text


async def test_other_triggers_and_unreadable_bodies(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await calcom_tenant(sessions)
    http = api.http()
    ping = envelope("MEETING_STARTED", datetime.now(UTC), booking("uid-x", soon()))
    assert (await deliver(http, tenant.company_id, ping)).json()["outcome"] == "ignored"
    unknown_type = envelope("BOOKING_CREATED", datetime.now(UTC), booking("uid-y", soon(), event_type=999))
    answer = (await deliver(http, tenant.company_id, unknown_type)).json()
    assert answer["outcome"] == "ignored"
    assert "event type 999" in answer["detail"]
    garbage = await deliver(http, tenant.company_id, b"{not json")
    assert garbage.status_code == 400
    assert garbage.json()["type"] == "/problems/unreadable-webhook"
    assert (await counts(sessions, tenant.company_id))["appointments"] == 0
    async with sessions() as session:
        logged = list(await session.scalars(select(CalcomWebhookDelivery.outcome)))
    assert logged == ["ignored"]
    # Companies are told apart by their secrets: another company's secret does not open this URL.
    other = await calcom_tenant(sessions, name="Other")
    async with transaction(sessions) as session:
        await session.execute(
            update(Company)
            .where(Company.id == other.company_id)
            .values(calcom_webhook_secret=uuid.uuid4().hex)
        )
    body = envelope("BOOKING_CREATED", datetime.now(UTC), booking("uid-z", soon()))
    assert (await deliver(http, other.company_id, body)).status_code == 401
