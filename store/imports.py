"""Bulk reads and writes of the CSV import (api/routes_import.py): a file's rows are matched to the
company's existing rows by `external_id` in a few queries, and written in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Branch, Customer, Service, Staff, StaffService

ImportTable = type[Staff] | type[Service] | type[Customer]
CHUNK = 5000


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


async def existing_by_external_id(
    session: AsyncSession, table: ImportTable, company_id: int, external_ids: Sequence[str]
) -> dict[str, Any]:
    """The company's rows of `table` with these external ids, by external id."""
    found: dict[str, Any] = {}
    for chunk in _chunks(list(external_ids)):
        rows: Iterable[Any] = await session.scalars(
            select(table).where(table.company_id == company_id, table.external_id.in_(chunk))
        )
        found.update({row.external_id: row for row in rows if row.external_id is not None})
    return found


async def branches(session: AsyncSession, company_id: int) -> list[tuple[int, str]]:
    rows = await session.execute(select(Branch.id, Branch.name).where(Branch.company_id == company_id))
    return [(row.id, row.name) for row in rows]


async def services_by_external_id(session: AsyncSession, company_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(Service.external_id, Service.id).where(
            Service.company_id == company_id, Service.external_id.is_not(None)
        )
    )
    return {row.external_id: row.id for row in rows}


async def service_links(session: AsyncSession, staff_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, set[int]]:
    links: dict[uuid.UUID, set[int]] = {staff_id: set() for staff_id in staff_ids}
    for chunk in _chunks(list(staff_ids)):
        rows = await session.execute(
            select(StaffService.staff_id, StaffService.service_id).where(StaffService.staff_id.in_(chunk))
        )
        for staff_id, service_id in rows:
            links[staff_id].add(service_id)
    return links


async def insert_many(session: AsyncSession, table: ImportTable, rows: Sequence[Mapping[str, Any]]) -> None:
    """One multi-row INSERT per chunk (every row carries the same keys)."""
    for chunk in _chunks(list(rows)):
        await session.execute(insert(table), [dict(row) for row in chunk])


async def update_one(
    session: AsyncSession, table: ImportTable, row_id: Any, values: Mapping[str, Any]
) -> None:
    await session.execute(update(table).where(table.id == row_id).values(**values, updated_at=func.now()))


async def replace_service_links(
    session: AsyncSession, company_id: int, links: Mapping[uuid.UUID, set[int]]
) -> None:
    """Make each staff member handle exactly the given services (only for the staff listed)."""
    staff_ids = list(links)
    for chunk in _chunks(staff_ids):
        await session.execute(delete(StaffService).where(StaffService.staff_id.in_(chunk)))
    pairs = [
        {"staff_id": staff_id, "service_id": service_id, "company_id": company_id}
        for staff_id, services in links.items()
        for service_id in sorted(services)
    ]
    for chunk in _chunks(pairs):
        await session.execute(insert(StaffService), list(chunk))
