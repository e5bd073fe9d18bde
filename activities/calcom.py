"""Cal.com activities: slot lookups and booking calls.

Errors are translated for Temporal's retry policy:
* a rate limit the client will not wait out inline → retryable, `next_retry_delay` = the wait Cal.com asked
  for (Retry-After / reset seconds / 60 s), so the retry does not land inside the block;
* 5xx, timeouts, refused connections → retryable with the policy's backoff;
* 4xx that asking again will not change (validation, unknown event type or booking, slot taken, auth),
  a bad search window, an unknown service → non-retryable.
These are regular (not local) activities: a lookup may legitimately wait a few seconds for the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from calcom.client import CalcomClient
from calcom.errors import CalcomBadRequest, CalcomError, CalcomRateLimited
from calcom.finder import (
    InvalidSlotSearch,
    ServiceNotFound,
    ServiceNotOnCalcom,
    ServiceResolver,
    SlotFinder,
    slot_cache,
)
from models.calcom import (
    Booking,
    BookingStatus,
    CancelBooking,
    CreateBooking,
    FindSlots,
    FoundSlots,
    RescheduleBooking,
    ServiceCalendar,
)
from store.calcom import load_service_calendar
from store.db import transaction

INVALID_SLOT_SEARCH = "InvalidSlotSearch"
UNKNOWN_SERVICE = "UnknownService"


def store_resolver(sessions: async_sessionmaker[AsyncSession]) -> ServiceResolver:
    """Service → Cal.com event type and zone, from `services.calcom_event_type_id`."""

    async def resolve(service_id: int, company_id: int | None) -> ServiceCalendar | None:
        async with transaction(sessions) as session:
            return await load_service_calendar(session, service_id, company_id)

    return resolve


def to_application_error(exc: CalcomError) -> ApplicationError:
    """A Cal.com failure in the terms of Temporal's retry policy."""
    details = {"status": exc.status, "code": exc.code, "message": exc.message, "request_id": exc.request_id}
    if isinstance(exc, CalcomRateLimited):
        return ApplicationError(
            str(exc),
            details,
            type="CalcomRateLimited",
            next_retry_delay=timedelta(seconds=max(1, math.ceil(exc.retry_after))),
        )
    return ApplicationError(str(exc), details, type=type(exc).__name__, non_retryable=not exc.retryable)


class CalcomActivities:
    def __init__(self, client: CalcomClient, finder: SlotFinder) -> None:
        self._client = client
        self._finder = finder

    @classmethod
    def build(
        cls,
        client: CalcomClient,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache_ttl_seconds: float = 45.0,
        search_chunk_days: int = 7,
    ) -> CalcomActivities:
        finder = SlotFinder(
            client,
            store_resolver(sessions),
            cache=slot_cache(cache_ttl_seconds),
            chunk_days=search_chunk_days,
        )
        return cls(client, finder)

    @property
    def finder(self) -> SlotFinder:
        return self._finder

    @property
    def client(self) -> CalcomClient:
        return self._client

    @activity.defn(name=names.CALCOM_FIND_SLOTS)
    async def find_slots(self, request: FindSlots) -> FoundSlots:
        """The next free slots of a service (inside a window when one is given)."""
        try:
            service = await self._finder.service(request.service_id, request.company_id)
        except ServiceNotFound as exc:
            raise ApplicationError(str(exc), type=UNKNOWN_SERVICE, non_retryable=True) from exc
        zone = request.time_zone or service.time_zone
        if request.window_start is not None and request.window_end is not None:
            searched_from, searched_until = request.window_start, request.window_end
        else:
            searched_from = request.after or datetime.now(UTC)
            searched_until = searched_from + timedelta(days=request.horizon_days)
        found = FoundSlots(
            service_id=service.service_id,
            event_type_id=service.event_type_id,
            time_zone=zone,
            searched_from=searched_from,
            searched_until=searched_until,
        )
        try:
            if request.window_start is not None:
                slots = await self._finder.find_in_window(service, searched_from, searched_until, zone)
            else:
                slots = await self._finder.find_next_slots(
                    service, searched_from, searched_until - searched_from, zone, limit=request.limit
                )
        except ServiceNotOnCalcom as exc:
            return found.model_copy(update={"note": str(exc)})
        except InvalidSlotSearch as exc:
            raise ApplicationError(str(exc), type=INVALID_SLOT_SEARCH, non_retryable=True) from exc
        except CalcomError as exc:
            raise to_application_error(exc) from exc
        return found.model_copy(update={"slots": slots[: request.limit]})

    @activity.defn(name=names.CALCOM_CREATE_BOOKING)
    async def create_booking(self, request: CreateBooking) -> Booking:
        try:
            booking = await self._client.create_booking(request)
        except CalcomError as exc:
            raise to_application_error(exc) from exc
        self._finder.forget(request.event_type_id)
        return booking

    @activity.defn(name=names.CALCOM_CANCEL_BOOKING)
    async def cancel_booking(self, request: CancelBooking) -> Booking:
        """Idempotent: a booking that is already cancelled (e.g. by an earlier attempt) is the result."""
        try:
            try:
                booking = await self._client.cancel_booking(request.uid, request.reason)
            except CalcomBadRequest:
                current = await self._client.get_booking(request.uid)
                if current.status is not BookingStatus.CANCELLED:
                    raise
                booking = current
        except CalcomError as exc:
            raise to_application_error(exc) from exc
        if booking.event_type_id is not None:
            self._finder.forget(booking.event_type_id)
        return booking

    @activity.defn(name=names.CALCOM_RESCHEDULE_BOOKING)
    async def reschedule_booking(self, request: RescheduleBooking) -> Booking:
        """Returns the *new* booking (new uid); the old one is cancelled by Cal.com."""
        try:
            booking = await self._client.reschedule_booking(
                request.uid, request.start, reason=request.reason, rescheduled_by=request.rescheduled_by
            )
        except CalcomError as exc:
            raise to_application_error(exc) from exc
        if booking.event_type_id is not None:
            self._finder.forget(booking.event_type_id)
        return booking

    def all(self) -> list[Callable[..., Any]]:
        return [self.find_slots, self.create_booking, self.cancel_booking, self.reschedule_booking]
