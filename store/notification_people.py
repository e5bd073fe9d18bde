"""The places and people a batch of events may reach, read together: one query for the (company,
branch) places of the batch, one for its staff, one for its customers, whatever the batch's size.

The dispatcher resolves every event a callback step writes (store/notification_outbox.py), most of them
to nobody, on the worker's hot path; ORM statements built and cache-keyed per event showed in its
profiles. So the statements are built once, here, run on the session's connection, and each only when an
event of the batch can reach what it reads: an event whose audience is the webhook alone needs no staff
and no customer. Who of the loaded people an event
reaches is still decided by the pure rules (rules/notifications.py), per event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from sqlalchemy import Row, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import BigInteger, Uuid

from models.notifications import Audience, NotifyEvent, Recipient, RecipientType
from rules.notifications import People, QuietHours, StaffMember, assignee_of, previous_assignee_of


@dataclass(frozen=True)
class QuietDefault:
    """The engine's quiet hours for branches that set none."""

    start: time
    end: time


@dataclass(frozen=True)
class Place:
    """The company's webhook URL (never its secret: it must not end up in workflow histories) and the
    branch's quiet hours."""

    webhook_url: str | None = None
    quiet: QuietHours | None = None


NOWHERE = Place()  # a company that is gone


_IDS = ARRAY(BigInteger())
_UUIDS = ARRAY(Uuid())

# A branch of another company, or none, leaves the place without quiet hours (branches.time_zone is
# NOT NULL, so a NULL one means no branch was found).
PLACES = text(
    """
    SELECT p.company_id, p.branch_id, c.webhook_url, b.quiet_hours_start, b.quiet_hours_end, b.time_zone
      FROM unnest(CAST(:companies AS bigint[]), CAST(:branches AS bigint[])) AS p(company_id, branch_id)
      JOIN companies AS c ON c.id = p.company_id
      LEFT JOIN branches AS b ON b.id = p.branch_id AND b.company_id = c.id
    """
).bindparams(bindparam("companies", type_=_IDS), bindparam("branches", type_=_IDS))

# Two arms, each able to use its index (the primary key; staff_idx_company_branch_active), rather than
# one OR that scans the table.
_STAFF_COLUMNS = (
    "s.id, s.company_id, s.branch_id, s.name, s.is_active, s.email, s.phone_number, s.locale, s.is_manager"
)
STAFF = text(
    f"""
    SELECT {_STAFF_COLUMNS}
      FROM staff AS s
     WHERE s.id = ANY(CAST(:ids AS uuid[]))
    UNION
    SELECT {_STAFF_COLUMNS}
      FROM staff AS s
      JOIN unnest(CAST(:companies AS bigint[]), CAST(:branches AS bigint[])) AS p(company_id, branch_id)
        ON s.company_id = p.company_id AND s.branch_id = p.branch_id
     WHERE s.is_manager IS TRUE
     ORDER BY id
    """
).bindparams(
    bindparam("ids", type_=_UUIDS), bindparam("companies", type_=_IDS), bindparam("branches", type_=_IDS)
)

CUSTOMERS = text(
    """
    SELECT id, company_id, locale, name, email, phone_number
      FROM customers
     WHERE id = ANY(CAST(:ids AS bigint[]))
    """
).bindparams(bindparam("ids", type_=_IDS))

_BY_ID = frozenset({Audience.ASSIGNEE, Audience.ASSIGNEE_OR_MANAGERS})
_MANAGERS = frozenset({Audience.MANAGERS, Audience.ASSIGNEE_OR_MANAGERS})


@dataclass(frozen=True)
class Reach:
    """What of the database one event's audience can reach: staff by id, its branch's managers, its
    customer's row, its company's webhook."""

    event: NotifyEvent
    staff_ids: frozenset[uuid.UUID]
    managers: bool
    customer: bool
    webhook: bool

    @property
    def place(self) -> tuple[int, int | None]:
        return (self.event.subject.company_id, self.event.subject.branch_id)

    @property
    def managed_branch(self) -> tuple[int, int] | None:
        """The (company, branch) whose managers the event reaches, if any."""
        branch_id = self.event.subject.branch_id
        return (self.event.subject.company_id, branch_id) if self.managers and branch_id is not None else None


def reach(event: NotifyEvent, audience: Iterable[Audience]) -> Reach:
    """Only the staff the rules will look up: the assignee, the previous assignee, the managers. An event
    without a branch has as managers the staff it involves who manage no branch (the rule it always had),
    so then every involved id is read."""
    roles = frozenset(audience)
    ids: set[uuid.UUID | None] = set()
    if roles & _BY_ID:
        ids.add(assignee_of(event))
    if Audience.PREVIOUS_ASSIGNEE in roles:
        ids.add(previous_assignee_of(event))
    managers = bool(roles & _MANAGERS)
    if managers and event.subject.branch_id is None:
        ids.update(involved(event))
    return Reach(
        event=event,
        staff_ids=frozenset(staff_id for staff_id in ids if staff_id is not None),
        managers=managers,
        customer=Audience.CUSTOMER in roles,
        webhook=Audience.WEBHOOK in roles,
    )


def involved(event: NotifyEvent) -> set[uuid.UUID]:
    subject, payload = event.subject, event.payload
    found = {
        subject.assigned_staff_id,
        *subject.previous_staff_ids,
        *(
            _uuid(payload.get(key))
            for key in ("staff_id", "previous_staff_id", "escalated_to", "escalated_from")
        ),
    }
    return {staff_id for staff_id in found if staff_id is not None}


@dataclass(frozen=True)
class _StaffRow:
    member: StaffMember
    company_id: int
    branch_id: int | None
    is_manager: bool


@dataclass
class Loaded:
    """What one batch read; `people` and `place` answer per event from memory."""

    places: dict[tuple[int, int | None], Place] = field(default_factory=dict)
    staff: dict[uuid.UUID, _StaffRow] = field(default_factory=dict)
    managers: dict[tuple[int, int], list[_StaffRow]] = field(default_factory=dict)
    customers: dict[int, Row[Any]] = field(default_factory=dict)

    def place(self, event: NotifyEvent) -> Place:
        return self.places.get((event.subject.company_id, event.subject.branch_id), NOWHERE)

    def people(self, reach: Reach, place: Place) -> People:
        company_id = reach.event.subject.company_id
        staff: dict[uuid.UUID, StaffMember] = {}
        for staff_id in reach.staff_ids:
            row = self.staff.get(staff_id)
            if row is not None and row.company_id == company_id:
                staff[staff_id] = row.member
        managers: list[uuid.UUID] = []
        branch = reach.managed_branch
        if branch is not None:
            for row in self.managers.get(branch, ()):
                staff[row.member.id] = row.member
                if row.member.active:
                    managers.append(row.member.id)
        elif reach.managers:  # no branch: the involved staff who manage no branch, by id
            managers = sorted(
                staff_id
                for staff_id in staff
                if (row := self.staff[staff_id]).member.active and row.is_manager and row.branch_id is None
            )
        webhook = None
        if reach.webhook and place.webhook_url:
            webhook = Recipient(type=RecipientType.WEBHOOK, id=str(company_id), webhook_url=place.webhook_url)
        customer = self._customer(reach.event) if reach.customer else None
        return People(staff=staff, managers=managers, customer=customer, webhook=webhook)

    def _customer(self, event: NotifyEvent) -> Recipient | None:
        """The subject's contact data as captured, completed from the customer's row (of its company)."""
        subject = event.subject
        locale = "de"
        name, email, phone = subject.customer_name, subject.customer_email, subject.customer_phone
        row = self.customers.get(subject.customer_id) if subject.customer_id is not None else None
        if row is not None and row.company_id == subject.company_id:
            locale = row.locale
            name, email, phone = name or row.name, email or row.email, phone or row.phone_number
        if not (email or phone):
            return None
        customer_id = (
            str(subject.customer_id) if subject.customer_id is not None else f"{subject.type}-{subject.id}"
        )
        return Recipient(
            type=RecipientType.CUSTOMER, id=customer_id, name=name, locale=locale, email=email, phone=phone
        )


async def load(connection: AsyncConnection, reaches: Sequence[Reach], default: QuietDefault | None) -> Loaded:
    """The places, staff and customers the batch can reach; a kind nobody can reach is not queried."""
    loaded = Loaded()
    if not reaches:
        return loaded
    await _places(connection, list({each.place for each in reaches}), default, loaded)
    staff_ids = list({staff_id for each in reaches for staff_id in each.staff_ids})
    branches = list({branch for each in reaches if (branch := each.managed_branch) is not None})
    if staff_ids or branches:
        await _staff(connection, staff_ids, branches, loaded)
    customer_ids = list(
        {c for each in reaches if each.customer and (c := each.event.subject.customer_id) is not None}
    )
    if customer_ids:
        await _customers(connection, customer_ids, loaded)
    return loaded


async def _places(
    connection: AsyncConnection,
    places: Sequence[tuple[int, int | None]],
    default: QuietDefault | None,
    loaded: Loaded,
) -> None:
    rows = await connection.execute(
        PLACES, {"companies": [c for c, _ in places], "branches": [b for _, b in places]}
    )
    for row in rows:
        quiet = None
        if row.branch_id is not None and row.time_zone is not None:
            if row.quiet_hours_start is not None and row.quiet_hours_end is not None:
                quiet = QuietHours(row.quiet_hours_start, row.quiet_hours_end, row.time_zone)
            elif default is not None:
                quiet = QuietHours(default.start, default.end, row.time_zone)
        loaded.places[(row.company_id, row.branch_id)] = Place(row.webhook_url, quiet)


async def _staff(
    connection: AsyncConnection,
    staff_ids: Sequence[uuid.UUID],
    branches: Sequence[tuple[int, int]],
    loaded: Loaded,
) -> None:
    rows = await connection.execute(
        STAFF,
        {"ids": list(staff_ids), "companies": [c for c, _ in branches], "branches": [b for _, b in branches]},
    )
    wanted_branches = set(branches)
    for row in rows:  # ordered by id: each branch's managers in the order the rules have always seen
        member = StaffMember(
            id=row.id,
            name=row.name,
            active=row.is_active,
            email=row.email,
            phone=row.phone_number,
            locale=row.locale,
        )
        staff_row = _StaffRow(member, row.company_id, row.branch_id, row.is_manager)
        loaded.staff[row.id] = staff_row
        place = (row.company_id, row.branch_id)
        if row.is_manager and row.branch_id is not None and place in wanted_branches:
            loaded.managers.setdefault((row.company_id, row.branch_id), []).append(staff_row)


async def _customers(connection: AsyncConnection, customer_ids: Sequence[int], loaded: Loaded) -> None:
    for row in await connection.execute(CUSTOMERS, {"ids": list(customer_ids)}):
        loaded.customers[row.id] = row


def _uuid(value: object) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
