"""What a Cal.com booking change does to the appointment (pure; store/calcom_bookings.py applies it).

Rules:
- Redelivery changes nothing: the same change applied twice finds nothing to change (and a modification
  is recorded under a request id derived from the booking uid, once).
- Out of order: an event older than the appointment's last applied Cal.com change (`calcom_changed_at`)
  never moves it back. An event about a uid the appointment was rescheduled away from is ignored too,
  whatever its time.
- A cancelled, completed or no-show appointment stays closed; only the meeting's end and the no-show flag
  move between completed and no-show.
- A cancellation or reschedule made in Cal.com by anyone but the host is recorded as the customer's
  modification (`modified_by_type = 'calcom'`), so it counts against the policy quota like one made here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from models.appointments import REQUEST_ID_PATTERN
from models.calcom_bookings import BookingChange, BookingEvent
from models.policies import ModificationType
from rules.policy import CLOSED_STATUSES

CALCOM_ACTOR = "calcom"
OPEN = frozenset({"scheduled", "confirmed"})


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"  # a redelivered webhook (store/calcom_bookings.py finds it in the log)


@dataclass(frozen=True)
class StoredAppointment:
    id: int
    status: str
    starts_at: datetime
    ends_at: datetime
    booking_uid: str | None
    changed_at: datetime | None


@dataclass(frozen=True)
class BookingPlan:
    outcome: Outcome
    detail: str
    status: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    booking_uid: str | None = None
    modification: ModificationType | None = None

    @property
    def writes(self) -> bool:
        return self.outcome in (Outcome.CREATED, Outcome.UPDATED)


def _ignored(detail: str) -> BookingPlan:
    return BookingPlan(Outcome.IGNORED, detail)


def modification_request_id(change: ModificationType, uid: str) -> str:
    """The same for the webhook and the reconciliation of one change: it is recorded once. A cancellation
    is keyed by the booking's uid, a reschedule by the new uid (each reschedule makes one)."""
    candidate = f"calcom-{change.value}-{uid}"
    if re.fullmatch(REQUEST_ID_PATTERN, candidate):
        return candidate
    return f"calcom-{change.value}-{hashlib.sha256(uid.encode()).hexdigest()[:40]}"


def target_status(event: BookingEvent, current: str | None) -> str | None:
    """The appointment status the change leads to (None: the status stays)."""
    change = event.change
    if change in (BookingChange.BOOKED, BookingChange.REQUESTED, BookingChange.RESCHEDULED):
        return "confirmed" if event.accepted and change is not BookingChange.REQUESTED else "scheduled"
    if change in (BookingChange.CANCELLED, BookingChange.REJECTED):
        return "cancelled"
    if change is BookingChange.ENDED:
        return "completed" if current is None or current in OPEN else current
    if change is BookingChange.NO_SHOW:
        if event.no_show:
            return "no_show"
        return "completed" if current == "no_show" else current
    return current


def _modification(event: BookingEvent, moved: bool) -> ModificationType | None:
    if event.by_host:
        return None
    if event.change is BookingChange.CANCELLED:
        return ModificationType.CANCEL
    if event.change is BookingChange.RESCHEDULED and moved:
        return ModificationType.RESCHEDULE
    return None


def plan(stored: StoredAppointment | None, event: BookingEvent) -> BookingPlan:
    """What to do with the appointment `stored` (None: no appointment has any of the event's uids)."""
    if stored is None:
        return _plan_new(event)
    if stored.changed_at is not None and event.occurred_at < stored.changed_at:
        return _ignored(
            f"older ({event.occurred_at.isoformat()}) than the last change applied "
            f"({stored.changed_at.isoformat()})"
        )
    rescheduled_here = event.change is BookingChange.RESCHEDULED and event.previous_uid == stored.booking_uid
    if stored.booking_uid is not None and event.uid != stored.booking_uid and not rescheduled_here:
        return _ignored(f"booking {event.uid} was rescheduled; the appointment is now {stored.booking_uid}")
    if event.change is BookingChange.SUPERSEDED:
        return _ignored(f"booking {event.uid} was replaced by its reschedule, which is not applied yet")
    status = target_status(event, stored.status)
    if stored.status in CLOSED_STATUSES and not (
        event.change in (BookingChange.ENDED, BookingChange.NO_SHOW) and stored.status != "cancelled"
    ):
        if status == stored.status:
            return BookingPlan(Outcome.UNCHANGED, f"the appointment is already {stored.status}")
        return _ignored(f"the appointment is {stored.status}")
    moves = event.change in (BookingChange.BOOKED, BookingChange.REQUESTED, BookingChange.RESCHEDULED)
    starts_at = event.start if moves and event.start is not None else stored.starts_at
    ends_at = event.end if moves and event.end is not None else stored.ends_at
    if ends_at <= starts_at:
        return _ignored("the booking ends before it starts")
    uid = event.uid if rescheduled_here else stored.booking_uid or event.uid
    new = (status or stored.status, starts_at, ends_at, uid)
    if new == (stored.status, stored.starts_at, stored.ends_at, stored.booking_uid):
        return BookingPlan(Outcome.UNCHANGED, "the appointment already says so")
    moved = (starts_at, ends_at) != (stored.starts_at, stored.ends_at)
    return BookingPlan(
        Outcome.UPDATED,
        f"{event.change.value}: {stored.status} → {new[0]}"
        + (f", moved to {starts_at.isoformat()}" if moved else ""),
        status=new[0],
        starts_at=starts_at,
        ends_at=ends_at,
        booking_uid=uid,
        modification=_modification(event, moved) if new[0] != stored.status or moved else None,
    )


def _plan_new(event: BookingEvent) -> BookingPlan:
    """A booking the engine has not seen: it becomes an appointment (in whatever state it is in now)."""
    if event.change in (BookingChange.NO_SHOW, BookingChange.SUPERSEDED, BookingChange.REJECTED):
        return _ignored(f"{event.change.value} of booking {event.uid}, which has no appointment")
    if event.start is None or event.end is None or event.end <= event.start:
        return _ignored(f"booking {event.uid} has no valid start and end")
    status = target_status(event, None)
    assert status is not None
    return BookingPlan(
        Outcome.CREATED,
        f"{event.change.value}: new appointment ({status})",
        status=status,
        starts_at=event.start,
        ends_at=event.end,
        booking_uid=event.uid,
        modification=_modification(event, moved=event.previous_uid is not None),
    )
