"""The slot finder: free Cal.com slots of a service, in a window or the next ones from a moment on.

Replaces the seed's `SmartAppointmentFinder`. Every lookup goes through the 45 s cache (event type + window
+ zone, single-flight), and the client paces itself by Cal.com's rate-limit headers.

`find_next_available` walks forward in chunks aligned to UTC days (so two searches started minutes apart
ask Cal.com the same question and share the cached answer), stops at the first chunk that has what it
needs, and never asks for anything past the horizon.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime, timedelta

from calcom.cache import TTLCache
from calcom.client import CalcomClient
from models.calcom import MAX_WINDOW_DAYS, ServiceCalendar, Slot, check_time_zone
from telemetry import metrics

ServiceResolver = Callable[[int, int | None], Awaitable[ServiceCalendar | None]]
SlotCacheKey = tuple[int, datetime, datetime, str | None]


class InvalidSlotSearch(ValueError):
    """The question itself is wrong (window too long, end before start, naive datetimes, bad zone)."""


class ServiceNotFound(LookupError):
    pass


class ServiceNotOnCalcom(LookupError):
    """The service has no `calcom_event_type_id`: there is no calendar to ask."""


def slot_cache(ttl_seconds: float = 45.0, clock: Callable[[], float] | None = None) -> TTLCache[list[Slot]]:
    """The cache of Cal.com slot answers, counted in `callbacks_calcom_cache_lookups`."""
    return TTLCache[list[Slot]](
        ttl_seconds, clock=clock or time.monotonic, lookups=metrics.CALCOM_CACHE_LOOKUPS
    )


class SlotFinder:
    def __init__(
        self,
        client: CalcomClient,
        resolve: ServiceResolver,
        *,
        cache: TTLCache[list[Slot]] | None = None,
        chunk_days: int = 7,
        max_window_days: int = MAX_WINDOW_DAYS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if chunk_days < 1:
            raise ValueError("chunk_days must be at least 1")
        self.client = client
        self.cache = cache if cache is not None else slot_cache()
        self._resolve = resolve
        self.chunk = timedelta(days=chunk_days)
        self.max_window = timedelta(days=max_window_days)
        self._clock = clock

    def now(self) -> datetime:
        """The finder's clock (the API measures how far ahead a lookup may start by it)."""
        return self._clock()

    async def service(self, service: int | ServiceCalendar, company_id: int | None = None) -> ServiceCalendar:
        if isinstance(service, ServiceCalendar):
            return service
        found = await self._resolve(service, company_id)
        if found is None:
            raise ServiceNotFound(f"service {service} does not exist")
        return found

    async def find_in_window(
        self,
        service: int | ServiceCalendar,
        start: datetime,
        end: datetime,
        time_zone: str | None = None,
    ) -> list[Slot]:
        """All free slots starting in [start, end), earliest first. Windows over 90 days are refused."""
        _aware(start, "start")
        _aware(end, "end")
        if end <= start:
            raise InvalidSlotSearch(
                f"the window ends ({end.isoformat()}) before it starts ({start.isoformat()})"
            )
        if end - start > self.max_window:
            days = (end - start) / timedelta(days=1)
            raise InvalidSlotSearch(
                f"a window of {days:g} days is longer than the {self.max_window.days}-day maximum; "
                "search in smaller windows"
            )
        zone = _zone(time_zone)
        calendar = await self.service(service)
        return await self._lookup(_event_type(calendar), start, end, zone)

    async def find_next_available(
        self,
        service: int | ServiceCalendar,
        after: datetime | None = None,
        horizon: timedelta = timedelta(days=30),
        time_zone: str | None = None,
    ) -> Slot | None:
        """The first free slot starting at or after `after` and before `after + horizon`, or None."""
        found = await self.find_next_slots(service, after, horizon, time_zone, limit=1)
        return found[0] if found else None

    async def find_next_slots(
        self,
        service: int | ServiceCalendar,
        after: datetime | None = None,
        horizon: timedelta = timedelta(days=30),
        time_zone: str | None = None,
        *,
        limit: int = 3,
    ) -> list[Slot]:
        """Up to `limit` free slots from `after` on, searching chunk by chunk, never past the horizon."""
        start = self._clock() if after is None else after
        _aware(start, "after")
        if horizon <= timedelta(0):
            raise InvalidSlotSearch("the horizon must be positive")
        if horizon > self.max_window:
            raise InvalidSlotSearch(f"the horizon is longer than the {self.max_window.days}-day maximum")
        if limit < 1:
            raise InvalidSlotSearch("limit must be at least 1")
        zone = _zone(time_zone)
        event_type = _event_type(await self.service(service))
        until = start + horizon
        cursor = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        found: list[Slot] = []
        while cursor < until and len(found) < limit:
            chunk_end = min(cursor + self.chunk, until)
            slots = await self._lookup(event_type, cursor, chunk_end, zone)
            found.extend(slot for slot in slots if start <= slot.start < until)
            cursor = chunk_end
        return found[:limit]

    async def _lookup(
        self, event_type_id: int, start: datetime, end: datetime, zone: str | None
    ) -> list[Slot]:
        key: SlotCacheKey = (event_type_id, start.astimezone(UTC), end.astimezone(UTC), zone)
        return await self.cache.get_or_load(
            key, lambda: self.client.get_slots(event_type_id, start, end, zone)
        )

    def forget(self, event_type_id: int) -> int:
        """Drop cached answers of an event type (after a booking changed its availability)."""
        return self.cache.invalidate(lambda key: _key_event_type(key) == event_type_id)


def _key_event_type(key: Hashable) -> int | None:
    return key[0] if isinstance(key, tuple) and key and isinstance(key[0], int) else None


def _event_type(calendar: ServiceCalendar) -> int:
    if calendar.event_type_id is None:
        raise ServiceNotOnCalcom(f"service {calendar.service_id} has no Cal.com event type")
    return calendar.event_type_id


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidSlotSearch(f"{name} must carry a time zone (got the naive {moment.isoformat()})")


def _zone(time_zone: str | None) -> str | None:
    if time_zone is None:
        return None
    try:
        return check_time_zone(time_zone)
    except ValueError as exc:
        raise InvalidSlotSearch(str(exc)) from exc
