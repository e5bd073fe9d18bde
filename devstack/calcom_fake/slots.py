"""The two slot endpoints and their version dispatch: `GET /v2/slots` (`cal-api-version: 2024-09-04`) with
its strict query validation, and the legacy `GET /v2/slots/available` that a missing or unknown header
falls back to (2024-04-15). A route of the other version answers 404.

`/v2/slots` validates like Cal.com's `whitelist` + `forbidNonWhitelisted`: one selector shape, any other
parameter is a 400 in the error envelope. `start`/`end` are read as UTC (a date alone = midnight UTC), an
`end` at exactly 00:00:00 UTC becomes 23:59:59, `end` is clamped to now + 1 year, and a `start` in the past
to now + the minimum notice. Date keys are in the requested `timeZone`, times luxon-style
(`.000+02:00`, or `.000Z` without a zone), and `data: {}` means nothing is free.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from devstack.calcom_fake.calendar import Calendar
from devstack.calcom_fake.ratelimit import Gate, RequestRecord
from devstack.calcom_fake.wire import (
    SLOTS_VERSION,
    ApiError,
    invalid,
    luxon_iso,
    not_found,
    parse_iso,
    valid_zone,
)

SLOT_SHAPES: dict[str, frozenset[str]] = {
    "byEventTypeId": frozenset({"eventTypeId"}),
    "byUsernameAndEventTypeSlug": frozenset({"eventTypeSlug", "username", "organizationSlug"}),
    "byTeamSlugAndEventTypeSlug": frozenset({"eventTypeSlug", "teamSlug", "organizationSlug"}),
    "byUsernames": frozenset({"usernames", "organizationSlug"}),
}
SLOT_COMMON = frozenset({"start", "end", "timeZone", "duration", "format", "bookingUidToReschedule"})


class SlotRoutes:
    def __init__(self, calendar: Calendar, gate: Gate) -> None:
        self._calendar = calendar
        self._gate = gate

    async def slots(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        if version != SLOTS_VERSION:  # the default (2024-04-15) controller has no such route
            raise not_found(f"Cannot GET {request.url.path}")
        self._gate.guard(request, record)
        params = request.query_params
        keys = list(params.keys())
        present = set(keys)
        if "eventTypeId" in present:
            shape = "byEventTypeId"
        elif {"username", "eventTypeSlug"} <= present:
            shape = "byUsernameAndEventTypeSlug"
        elif {"teamSlug", "eventTypeSlug"} <= present:
            shape = "byTeamSlugAndEventTypeSlug"
        else:
            shape = "byUsernames"
        allowed = SLOT_SHAPES[shape] | SLOT_COMMON
        errors = [
            f"{key} property is wrong,property {key} should not exist "
            for key in dict.fromkeys(keys)
            if key not in allowed
        ]
        if errors:
            raise invalid(", ".join(errors).strip())
        if shape != "byEventTypeId":
            raise not_found("User not found")  # the fake only knows event types by id
        event_type_raw = params["eventTypeId"]
        if not re.fullmatch(r"\d+", event_type_raw):
            raise invalid("eventTypeId must be an integer number")
        for name in ("start", "end"):
            if name not in params or parse_iso(params[name]) is None:
                raise invalid(f"{name} must be a valid ISO 8601 date string")
        zone = params.get("timeZone")
        if zone is not None and not valid_zone(zone):
            raise invalid("timeZone must be a valid IANA time-zone")
        duration_raw = params.get("duration")
        if duration_raw is not None and not re.fullmatch(r"\d+", duration_raw):
            raise invalid("duration must be an integer number")
        slot_format = params.get("format", "time").lower()
        if slot_format not in ("time", "range"):
            raise invalid("slotFormat must be either 'range' or 'time'")
        start = parse_iso(params["start"])
        end = parse_iso(params["end"])
        assert start is not None
        assert end is not None
        if (end.hour, end.minute, end.second, end.microsecond) == (0, 0, 0, 0):
            end = end.replace(hour=23, minute=59, second=59)
        now = self._calendar.now()
        end = min(end, now + timedelta(days=365))
        if end < start:
            raise invalid("Invalid time range given - check the 'start' and 'end' query parameters.")
        event_type = self._calendar.event_types.get(int(event_type_raw))
        if event_type is None:
            raise not_found("Event Type not found")
        length = int(duration_raw) if duration_raw else event_type.length
        exclude = params.get("bookingUidToReschedule")
        slots = self._calendar.free_slots(event_type, start, end, length=length, exclude_uid=exclude)
        data: dict[str, list[dict[str, Any]]] = {}
        key_zone = ZoneInfo(zone) if zone else UTC
        first_key = start.astimezone(key_zone).date()
        last_key = end.astimezone(key_zone).date()
        for slot_start in slots:
            day = slot_start.astimezone(key_zone).date()
            if not first_key <= day <= last_key:  # _filterSlotsByRequestedDateRange
                continue
            item = {"start": luxon_iso(slot_start, zone)}
            if slot_format == "range":
                item["end"] = luxon_iso(slot_start + timedelta(minutes=length), zone)
            data.setdefault(day.isoformat(), []).append(item)
        return self._gate.ok({"status": "success", "data": data}, record)

    async def slots_available(self, request: Request, record: RequestRecord, version: str | None) -> Response:
        if version in (SLOTS_VERSION,):
            raise not_found(f"Cannot GET {request.url.path}")
        self._gate.guard(request, record)
        params = request.query_params  # whitelist: unknown parameters are stripped, not refused
        start = parse_iso(params.get("startTime", ""))
        end = parse_iso(params.get("endTime", ""))
        if start is None or end is None or end < start:
            raise invalid("Invalid time range given - check the 'startTime' and 'endTime' query parameters.")
        raw_id = params.get("eventTypeId")
        event_type = self._calendar.event_types.get(int(raw_id)) if raw_id and raw_id.isdigit() else None
        if event_type is None:
            raise ApiError(404, "TRPCError", "NOT_FOUND")
        zone = params.get("timeZone")
        if zone is not None and not valid_zone(zone):
            zone = None
        length = int(params["duration"]) if params.get("duration", "").isdigit() else event_type.length
        range_format = params.get("slotFormat", "time").lower() == "range"
        slots: dict[str, list[dict[str, Any]]] = {}
        for slot_start in self._calendar.free_slots(event_type, start, end, length=length):
            day = slot_start.astimezone(ZoneInfo(zone) if zone else UTC).date().isoformat()
            if range_format:
                item = {
                    "startTime": luxon_iso(slot_start, zone),
                    "endTime": luxon_iso(slot_start + timedelta(minutes=length), zone),
                }
            else:
                item = {"time": luxon_iso(slot_start, zone)}
            slots.setdefault(day, []).append(item)
        return self._gate.ok({"status": "success", "data": {"slots": slots}}, record)

    # -- availability ----------------------------------------------------------------------------------
