"""Signed Cal.com webhooks for tests: the real envelope and payload shape (shared/calcom-api.md §6), and a
tenant whose services are booked through Cal.com event types."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import (
    Appointment,
    AppointmentModification,
    CalcomWebhookDelivery,
    Company,
    Customer,
    Service,
)
from rules.calcom_webhooks import SIGNATURE_HEADER, sign
from store.db import transaction
from tests.factories import Tenant, make_tenant

Sessions = async_sessionmaker[AsyncSession]
SECRET = "whsec_test_0123456789"
EVENT_TYPE = 4711
HOST_EMAIL = "anna@clinic.example"


async def calcom_tenant(
    sessions: Sessions, *, name: str = "Praxis Cal", event_type: int = EVENT_TYPE
) -> Tenant:
    """A tenant whose first service is Cal.com event type `event_type`, with a Cal.com webhook secret."""
    tenant = await make_tenant(sessions, name=name)
    async with transaction(sessions) as session:
        await session.execute(
            update(Company).where(Company.id == tenant.company_id).values(calcom_webhook_secret=SECRET)
        )
        await session.execute(
            update(Service).where(Service.id == tenant.service_ids[0]).values(calcom_event_type_id=event_type)
        )
    return tenant


def iso(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


def created_at(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def booking(
    uid: str,
    start: datetime,
    *,
    minutes: int = 30,
    status: str = "ACCEPTED",
    email: str = "zoe@example.org",
    name: str = "Zoe Booker",
    phone: str | None = None,
    event_type: int = EVENT_TYPE,
    **extra: Any,
) -> dict[str, Any]:
    attendee: dict[str, Any] = {
        "email": email,
        "name": name,
        "timeZone": "Europe/Berlin",
        "language": {"locale": "de"},
        "utcOffset": 60,
    }
    if phone:
        attendee["phoneNumber"] = phone
    payload = {
        "type": "checkup",
        "title": f"Checkup between Anna and {name}",
        "startTime": iso(start),
        "endTime": iso(start + timedelta(minutes=minutes)),
        "organizer": {"id": 1, "name": "Anna", "email": HOST_EMAIL, "timeZone": "Europe/Berlin"},
        "attendees": [attendee],
        "responses": {"name": {"label": "your_name", "value": name}, "email": {"value": email}},
        "eventTypeId": event_type,
        "uid": uid,
        "bookingId": abs(hash(uid)) % 100_000,
        "length": minutes,
        "status": status,
        "metadata": {},
    }
    payload.update(extra)
    return payload


def envelope(trigger: str, at: datetime, payload: dict[str, Any]) -> bytes:
    return json.dumps({"triggerEvent": trigger, "createdAt": created_at(at), "payload": payload}).encode()


async def deliver(
    http: httpx.AsyncClient, company_id: int, body: bytes, *, secret: str | None = SECRET
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return await http.post(f"/v1/calcom/webhooks/{company_id}", content=body, headers=headers)


async def counts(sessions: Sessions, company_id: int) -> dict[str, int]:
    async with sessions() as session:
        result = {}
        for name, table in (
            ("appointments", Appointment),
            ("customers", Customer),
            ("modifications", AppointmentModification),
            ("deliveries", CalcomWebhookDelivery),
        ):
            result[name] = int(
                await session.scalar(
                    select(func.count()).select_from(table).where(table.company_id == company_id)
                )
                or 0
            )
        return result


async def appointment_by_uid(sessions: Sessions, company_id: int, uid: str) -> Appointment | None:
    async with sessions() as session:
        found = await session.scalar(
            select(Appointment).where(
                Appointment.company_id == company_id, Appointment.calcom_booking_uid == uid
            )
        )
        return found
