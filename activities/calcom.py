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
# Read back after a lost answer: the booking was changed in Cal.com by someone else meanwhile.
BOOKING_CANCELLED = "CalcomBookingCancelled"
BOOKING_MOVED = "CalcomBookingMoved"
MAX_RESCHEDULE_HOPS = 5


def _cancelled(booking: Booking) -> Booking | None:
    """`booking` when it is cancelled (None: still open). A booking cancelled by being rescheduled was
    moved, not cancelled: that is someone else's change, refused here."""
    if booking.status is not BookingStatus.CANCELLED:
        return None
    if booking.rescheduled_to_uid is not None:
        raise ApplicationError(
            f"booking {booking.uid} was rescheduled in Cal.com (now {booking.rescheduled_to_uid}); "
            "it was not cancelled",
            type=BOOKING_MOVED,
            non_retryable=True,
        )
    return booking


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
        """Idempotent: a booking that is already cancelled (e.g. by an earlier attempt whose answer was
        lost) is the result; it is read back before a retried attempt sends the cancel again."""
        try:
            booking = None
            if request.read_back_first or activity.info().attempt > 1:
                booking = _cancelled(await self._client.get_booking(request.uid))
            if booking is None:
                try:
                    booking = await self._client.cancel_booking(request.uid, request.reason)
                except CalcomBadRequest:
                    booking = _cancelled(await self._client.get_booking(request.uid))
                    if booking is None:
                        raise
        except CalcomError as exc:
            raise to_application_error(exc) from exc
        if booking.event_type_id is not None:
            self._finder.forget(booking.event_type_id)
        return booking

    @activity.defn(name=names.CALCOM_RESCHEDULE_BOOKING)
    async def reschedule_booking(self, request: RescheduleBooking) -> Booking:
        """Returns the *new* booking (new uid); the old one is cancelled by Cal.com.

        A reschedule whose answer was lost (a timeout after Cal.com moved it) must not be sent again: the
        old uid is cancelled by then and Cal.com would refuse it (400), although the move happened. So a
        retried attempt, and any 400, first reads the old booking back and follows `rescheduledToUid`."""
        try:
            booking = None
            if request.read_back_first or activity.info().attempt > 1:
                booking = await self._rescheduled(request)
            if booking is None:
                try:
                    booking = await self._client.reschedule_booking(
                        request.uid,
                        request.start,
                        reason=request.reason,
                        rescheduled_by=request.rescheduled_by,
                    )
                except CalcomBadRequest:
                    booking = await self._rescheduled(request)
                    if booking is None:
                        raise
        except CalcomError as exc:
            raise to_application_error(exc) from exc
        if booking.event_type_id is not None:
            self._finder.forget(booking.event_type_id)
        return booking

    async def _rescheduled(self, request: RescheduleBooking) -> Booking | None:
        """The booking `request` already led to, read back from Cal.com; None while the old booking is
        still in place (the reschedule did not happen). Raises a refusal when someone else cancelled or
        moved the booking meanwhile."""
        old = await self._client.get_booking(request.uid)
        if old.status is not BookingStatus.CANCELLED:
            return None
        new = await self._successor(old, request.start)
        if new is None:
            raise ApplicationError(
                f"booking {old.uid} was cancelled in Cal.com meanwhile; nothing to reschedule",
                type=BOOKING_CANCELLED,
                non_retryable=True,
            )
        if new.start != request.start or new.status is BookingStatus.CANCELLED:
            raise ApplicationError(
                f"booking {old.uid} was moved in Cal.com meanwhile (now booking {new.uid} at "
                f"{new.start.isoformat()}, {new.status.value}), not to {request.start.isoformat()}",
                type=BOOKING_MOVED,
                non_retryable=True,
            )
        return new

    async def _successor(self, old: Booking, near: datetime) -> Booking | None:
        """The booking that replaced `old` by a reschedule, following further reschedules; None when `old`
        was cancelled outright. Cal.com names it on the old booking (`rescheduledToUid`); an answer
        without that field is covered by listing the event type's bookings around `near` (the requested
        start) for the one rescheduled from it."""
        current = old
        for _ in range(MAX_RESCHEDULE_HOPS):
            uid = current.rescheduled_to_uid or await self._rescheduled_from(current, near)
            if uid is None:
                return None if current is old else current
            current = await self._client.get_booking(uid)
            if current.status is not BookingStatus.CANCELLED:
                return current
        return current

    async def _rescheduled_from(self, old: Booking, near: datetime) -> str | None:
        if old.event_type_id is None:
            return None
        page = await self._client.list_bookings(
            event_type_id=old.event_type_id,
            after_start=near - timedelta(minutes=1),
            before_end=near + timedelta(days=1),
            take=100,
        )
        found = [booking.uid for booking in page.bookings if booking.rescheduled_from_uid == old.uid]
        return found[0] if found else None

    def all(self) -> list[Callable[..., Any]]:
        return [self.find_slots, self.create_booking, self.cancel_booking, self.reschedule_booking]
