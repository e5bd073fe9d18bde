"""Staff beyond their own row: the services they handle, their absences, whether they are active, and the
open callbacks they hold (which their workflows reassign when they are deactivated)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.callbacks import CallbackStatus, stored_callback_workflow_id
from models.tables import CallbackRequest, Staff, StaffAbsence, StaffService

OPEN_STATUSES = tuple(s.value for s in CallbackStatus if not s.is_terminal)


async def service_links(session: AsyncSession, staff_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    """The services each staff member handles (sorted ids), for many staff in one query."""
    ids = list(staff_ids)
    links: dict[uuid.UUID, list[int]] = {staff_id: [] for staff_id in ids}
    if not ids:
        return links
    rows = await session.execute(
        select(StaffService.staff_id, StaffService.service_id)
        .where(StaffService.staff_id.in_(ids))
        .order_by(StaffService.staff_id, StaffService.service_id)
    )
    for staff_id, service_id in rows:
        links[staff_id].append(service_id)
    return links


async def set_service_links(
    session: AsyncSession, company_id: int, staff_id: uuid.UUID, service_ids: Sequence[int]
) -> bool:
    """Make the staff member handle exactly these services; whether anything changed."""
    current = set((await service_links(session, [staff_id]))[staff_id])
    wanted = set(service_ids)
    if current == wanted:
        return False
    if current - wanted:
        await session.execute(
            delete(StaffService).where(
                StaffService.staff_id == staff_id, StaffService.service_id.in_(current - wanted)
            )
        )
    if wanted - current:
        await session.execute(
            insert(StaffService)
            .values(
                [
                    {"staff_id": staff_id, "service_id": service_id, "company_id": company_id}
                    for service_id in sorted(wanted - current)
                ]
            )
            .on_conflict_do_nothing()
        )
    return True


async def set_active(session: AsyncSession, staff_id: uuid.UUID, active: bool) -> bool:
    """Activate or deactivate; whether the flag changed. A deactivated member's keys stop working at
    once (store/api_keys.py reads the flag on every request)."""
    changed = await session.execute(
        update(Staff)
        .where(Staff.id == staff_id, Staff.is_active.is_not(active))
        .values(is_active=active, updated_at=func.now())
        .returning(Staff.id)
    )
    return changed.first() is not None


async def open_callbacks_of(session: AsyncSession, staff_id: uuid.UUID) -> list[str]:
    """The workflows of the open callbacks assigned to the staff member (as the read model knows them),
    oldest first."""
    rows = await session.execute(
        select(CallbackRequest.id, CallbackRequest.workflow_id)
        .where(
            CallbackRequest.assigned_to == staff_id,
            CallbackRequest.status.in_(OPEN_STATUSES),
            CallbackRequest.deleted_at.is_(None),
        )
        .order_by(CallbackRequest.created_at, CallbackRequest.id)
    )
    return [stored_callback_workflow_id(callback_id, workflow_id) for callback_id, workflow_id in rows]


# --- absences ----------------------------------------------------------------------------------------


async def absences(
    session: AsyncSession,
    staff_id: uuid.UUID,
    *,
    ending_after: datetime | None = None,
    starting_before: datetime | None = None,
) -> list[StaffAbsence]:
    """The staff member's absences that overlap [ending_after, starting_before), by start."""
    conditions = [StaffAbsence.staff_id == staff_id]
    if ending_after is not None:
        conditions.append(StaffAbsence.ends_at > ending_after)
    if starting_before is not None:
        conditions.append(StaffAbsence.starts_at < starting_before)
    rows = await session.scalars(
        select(StaffAbsence).where(*conditions).order_by(StaffAbsence.starts_at, StaffAbsence.id)
    )
    return list(rows)


async def add_absence(
    session: AsyncSession,
    *,
    company_id: int,
    staff_id: uuid.UUID,
    starts_at: datetime,
    ends_at: datetime,
    kind: str,
    note: str | None,
) -> StaffAbsence:
    row = StaffAbsence(
        company_id=company_id, staff_id=staff_id, starts_at=starts_at, ends_at=ends_at, kind=kind, note=note
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def delete_absence(session: AsyncSession, staff_id: uuid.UUID, absence_id: int) -> bool:
    deleted = await session.execute(
        delete(StaffAbsence)
        .where(StaffAbsence.id == absence_id, StaffAbsence.staff_id == staff_id)
        .returning(StaffAbsence.id)
    )
    return deleted.first() is not None
