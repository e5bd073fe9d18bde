"""Reconciliation of Cal.com bookings: what the webhooks should have told us, read from Cal.com's bookings
list (`GET /v2/bookings`) for each company booked through Cal.com, and applied with the same upsert as the
webhook endpoint (store/calcom_bookings.py), so a booking whose webhook was lost still becomes (or changes)
its appointment, and one whose webhook did arrive changes nothing.

The bookings (with the attendees' names and addresses) stay inside the activity: it returns counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities import names
from activities.calcom import to_application_error
from calcom.client import CalcomClient
from calcom.errors import CalcomError
from models.calcom_bookings import SyncBookings, SyncReport
from rules.calcom_webhooks import event_from_listed
from store import calcom_bookings as store
from store.db import transaction
from store.policies import PolicyResolver
from telemetry import metrics

log = logging.getLogger(__name__)

PAGE_SIZE = 100


class CalcomSyncActivities:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], client: CalcomClient, policies: PolicyResolver
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._policies = policies

    @activity.defn(name=names.CALCOM_SYNC_COMPANIES)
    async def companies(self) -> list[int]:
        """The companies with a service booked through Cal.com (an event type id)."""
        async with self._sessions() as session:
            return await store.companies_with_calcom(session)

    @activity.defn(name=names.CALCOM_SYNC_BOOKINGS)
    async def sync_company(self, request: SyncBookings) -> SyncReport:
        """Every booking of the company's event types starting in the window, applied one by one (each in
        its own short transaction; a booking that cannot be applied is reported and the rest go on)."""
        report = SyncReport(company_id=request.company_id)
        async with self._sessions() as session:
            event_types = await store.event_types_of(session, request.company_id)
        for event_type in event_types:
            skip = 0
            while True:
                observed = datetime.now(UTC)
                try:
                    page = await self._client.list_bookings(
                        event_type_id=event_type,
                        after_start=request.after,
                        before_end=request.before,
                        take=PAGE_SIZE,
                        skip=skip,
                    )
                except CalcomError as exc:
                    raise to_application_error(exc) from exc
                for booking in page.bookings:
                    activity.heartbeat(event_type, skip)
                    try:
                        event = event_from_listed(booking, observed)
                        async with transaction(self._sessions) as session:
                            applied = await store.apply_booking_event(
                                session, request.company_id, event, resolver=self._policies
                            )
                    except ValueError as exc:  # an unreadable booking (pydantic's errors are ValueErrors)
                        report.seen += 1
                        report.failed += 1
                        if len(report.problems) < 20:
                            report.problems.append(f"booking {booking.uid}: {exc}")
                        continue
                    report.count(applied.outcome.value)
                    metrics.CALCOM_SYNCED.labels(applied.outcome.value).inc()
                if not page.has_more or not page.bookings:
                    break
                skip += len(page.bookings)
        if report.created or report.updated:
            log.info(
                "Cal.com sync of company %d: %d bookings, %d new and %d changed appointments",
                request.company_id,
                report.seen,
                report.created,
                report.updated,
            )
        return report

    def all(self) -> list[Callable[..., Any]]:
        return [self.companies, self.sync_company]
