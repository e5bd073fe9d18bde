"""/v1/services/{id}/slots: the Cal.com slot finder, called from the API process.

The finder caches for 45 s and shares concurrent identical lookups, so a busy booking page costs Cal.com
one request per window, not one per visitor. A Cal.com outage is a 502/503 problem, never a hang: the
client waits inline only up to `calcom_max_inline_wait_seconds` for its rate-limit budget.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.auth import Principal, Reader
from api.deps import Deps, get_deps
from api.directory_schemas import TimeZoneName
from api.params import MAX_ID, Rfc3339
from api.problems import ApiProblem, invalid, not_found
from api.ratelimit import retry_after_header
from calcom.errors import CalcomClientError, CalcomError, CalcomNotFound, CalcomRateLimited
from calcom.finder import InvalidSlotSearch, ServiceNotOnCalcom
from models.calcom import MAX_WINDOW_DAYS, ServiceCalendar
from store.calcom import load_service_calendar

router = APIRouter(prefix="/v1/services", tags=["slots"])

DepsDep = Annotated[Deps, Depends(get_deps)]

TimeZone = Annotated[TimeZoneName | None, Query(description="IANA zone of the answer's dates")]


# How far from now a lookup may start: Cal.com looks at most a year ahead (it clamps a window's end to now +
# 1 year and refuses a window that then ends before it starts) and nothing in the past is free. A start
# further out either way is refused here, by field, before Cal.com is asked (its 400 would be our 502).
HORIZON = timedelta(days=365)


def _moment(moment: datetime, name: str, now: datetime) -> datetime:
    """A lookup's start or end: with an offset, representable in UTC; a start within a year of now."""
    if moment.tzinfo is None:
        raise invalid(name, "must carry a time zone offset, e.g. 2030-03-04T09:00:00+01:00")
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise invalid(name, "is out of range (years 1 to 9999 in UTC)") from None
    if name != "end" and not now - HORIZON <= moment <= now + HORIZON:
        raise invalid(name, f"must be within {HORIZON.days} days of now: Cal.com looks no further")
    return moment


async def service_calendar(deps: Deps, principal: Principal, service_id: int) -> ServiceCalendar:
    if not 0 < service_id <= MAX_ID:
        raise not_found("service", service_id)
    async with deps.sessions() as session:
        calendar = await load_service_calendar(session, service_id, principal.scope())
    if calendar is None:
        raise not_found("service", service_id)
    return calendar


def calcom_problem(exc: Exception) -> ApiProblem:
    if isinstance(exc, InvalidSlotSearch):
        field = "time_zone" if "time zone" in str(exc) else "window"
        return invalid(field, str(exc))
    if isinstance(exc, CalcomNotFound):
        # The service names an event type Cal.com does not know: its configuration, not this request.
        return ApiProblem(
            409, f"Cal.com does not know the service's event type: {exc}", slug="calcom-event-type-unknown"
        )
    if isinstance(exc, ServiceNotOnCalcom):
        return ApiProblem(409, str(exc), slug="service-not-on-calcom", title="Service has no calendar")
    if isinstance(exc, CalcomRateLimited):
        return ApiProblem(
            503,
            "Cal.com's rate limit is used up; try again later",
            slug="calcom-rate-limited",
            headers={"Retry-After": retry_after_header(exc.retry_after)},
        )
    if isinstance(exc, CalcomClientError):
        return ApiProblem(502, f"Cal.com refused the lookup: {exc}", slug="calcom-error", title="Bad gateway")
    return ApiProblem(503, f"Cal.com did not answer: {exc}", slug="calcom-unavailable")


def _slots(found: list[Any]) -> list[dict[str, Any]]:
    return [slot.model_dump(mode="json", exclude_none=True) for slot in found]


@router.get("/{service_id}/slots")
async def slots_in_window(
    service_id: int,
    start: Rfc3339,
    end: Rfc3339,
    principal: Reader,
    deps: DepsDep,
    time_zone: TimeZone = None,
) -> dict[str, Any]:
    """Free slots starting in [start, end); windows over 90 days are refused."""
    calendar = await service_calendar(deps, principal, service_id)
    now = deps.slots.now()
    try:
        found = await deps.slots.find_in_window(
            calendar, _moment(start, "start", now), _moment(end, "end", now), time_zone
        )
    except (InvalidSlotSearch, ServiceNotOnCalcom, CalcomError) as exc:
        raise calcom_problem(exc) from None
    return {"service_id": service_id, "time_zone": time_zone or calendar.time_zone, "slots": _slots(found)}


@router.get("/{service_id}/slots/next")
async def next_slots(
    service_id: int,
    principal: Reader,
    deps: DepsDep,
    after: Rfc3339 | None = None,
    horizon_days: Annotated[int, Query(ge=1, le=MAX_WINDOW_DAYS)] = 30,
    limit: Annotated[int, Query(ge=1, le=50)] = 1,
    time_zone: TimeZone = None,
) -> dict[str, Any]:
    """The next free slots from `after` (default: now) on, within `horizon_days`."""
    calendar = await service_calendar(deps, principal, service_id)
    now = deps.slots.now()
    start = _moment(after, "after", now) if after is not None else now
    try:
        found = await deps.slots.find_next_slots(
            calendar, start, timedelta(days=horizon_days), time_zone, limit=limit
        )
    except (InvalidSlotSearch, ServiceNotOnCalcom, CalcomError) as exc:
        raise calcom_problem(exc) from None
    return {"service_id": service_id, "time_zone": time_zone or calendar.time_zone, "slots": _slots(found)}
