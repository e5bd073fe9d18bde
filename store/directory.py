"""The tenant directory: companies, branches, services, staff and customers as rows to list, read, create
and change (the API's `/v1/companies` … `/v1/customers` and the console's admin pages).

Every read takes the company to scope by (None only for a super_admin), like the callback queries, so a
forgotten WHERE cannot leak another tenant's rows. The functions are generic over the directory's tables:
each has an integer or UUID `id`, a `company_id` (except `companies` itself) and `created_at`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from models.tables import Branch, Company, Customer, Service, Staff

Row = TypeVar("Row", Company, Branch, Service, Staff, Customer)
DirectoryTable = type[Company] | type[Branch] | type[Service] | type[Staff] | type[Customer]

# What `q` searches, per table (case-insensitive substring; digits also match phone numbers).
SEARCHED: Mapping[str, tuple[str, ...]] = {
    "companies": ("name",),
    "branches": ("name", "email"),
    "services": ("name", "external_id"),
    "staff": ("name", "email", "external_id"),
    "customers": ("name", "email", "external_id"),
}
PHONES = {"branches", "staff", "customers"}


class ExternalIdTaken(ValueError):
    """Another row of the company already has this external id (unique per company and table)."""


@dataclass(frozen=True)
class RowPage:
    rows: list[Any]
    total: int


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def scope(table: DirectoryTable, company_id: int | None) -> list[ColumnElement[bool]]:
    if company_id is None:
        return []
    column = table.id if table is Company else table.company_id  # type: ignore[union-attr]
    return [column == company_id]


def search(table: DirectoryTable, term: str | None) -> list[ColumnElement[bool]]:
    """`term` in any searched column (and its digits in the phone number, where the table has one)."""
    if not term or not term.strip():
        return []
    pattern = f"%{_escape_like(term.strip())}%"
    name = table.__tablename__
    matches: list[ColumnElement[bool]] = [
        getattr(table, column).ilike(pattern, escape="\\") for column in SEARCHED[name]
    ]
    digits = "".join(ch for ch in term if ch.isdigit())
    if name in PHONES and digits:
        matches.append(cast(Any, table).phone_number.like(f"%{digits}%"))
    return [or_(*matches)]


async def list_rows(
    session: AsyncSession,
    table: DirectoryTable,
    *,
    company_id: int | None,
    q: str | None = None,
    equal: Mapping[str, Any] | None = None,
    page: int = 1,
    page_size: int = 50,
) -> RowPage:
    """One page ordered by name (ties by id, so pages never overlap) and the total count; `equal`
    filters by column values (None values are left out: "any")."""
    conditions = [*scope(table, company_id), *search(table, q)]
    for column, value in (equal or {}).items():
        if value is not None:
            conditions.append(getattr(table, column) == value)
    total = await session.scalar(select(func.count()).select_from(table).where(*conditions))
    rows = await session.scalars(
        select(table)
        .where(*conditions)
        .order_by(func.lower(table.name), table.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return RowPage(list(rows), int(total or 0))


async def get_row(
    session: AsyncSession, table: type[Row], row_id: int | uuid.UUID, company_id: int | None
) -> Row | None:
    """The row if it exists and belongs to the company (None otherwise: callers answer 404 for both)."""
    found: Row | None = await session.scalar(
        select(table).where(table.id == row_id, *scope(table, company_id))
    )
    return found


async def insert_row(session: AsyncSession, table: type[Row], values: Mapping[str, Any]) -> Row:
    row = table(**values)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise _translated(exc) from None
    await session.refresh(row)
    return row


async def update_row(
    session: AsyncSession, table: type[Row], row_id: int | uuid.UUID, values: Mapping[str, Any]
) -> Row:
    """Change the given columns of an (already tenant-checked) row; returns it as stored."""
    if values:
        try:
            await session.execute(
                update(table).where(table.id == row_id).values(**values, updated_at=func.now())
            )
        except IntegrityError as exc:
            raise _translated(exc) from None
    found = await session.scalar(
        select(table).where(table.id == row_id).execution_options(populate_existing=True)
    )
    assert found is not None
    return found


def _translated(exc: IntegrityError) -> Exception:
    if "uniq_company_external_id" in str(exc.orig):
        return ExternalIdTaken("another row of this company already has this external_id")
    return exc


async def external_id_owner(
    session: AsyncSession,
    table: type[Service] | type[Staff] | type[Customer],
    company_id: int,
    external_id: str,
) -> Any | None:
    """The id of the company's row with this external id, if any."""
    return await session.scalar(
        select(table.id).where(table.company_id == company_id, table.external_id == external_id)
    )


async def ids_of_company(
    session: AsyncSession, table: DirectoryTable, company_id: int, ids: Sequence[Any]
) -> set[Any]:
    """Which of `ids` are rows of the company (one query for a whole list, e.g. a staff's services)."""
    if not ids:
        return set()
    return set(
        await session.scalars(select(table.id).where(table.id.in_(list(ids)), *scope(table, company_id)))
    )


@dataclass(frozen=True)
class RegionHints:
    """What phone numbers are read against: the branches' and the company's countries and zones."""

    company_zone: str | None
    branches: dict[int, tuple[str | None, str | None, str | None]]  # id → (country, phone, zone)


async def region_hints(session: AsyncSession, company_id: int) -> RegionHints:
    zone = await session.scalar(select(Company.time_zone).where(Company.id == company_id))
    rows = await session.execute(
        select(Branch.id, Branch.country, Branch.phone_number, Branch.time_zone).where(
            Branch.company_id == company_id
        )
    )
    return RegionHints(zone, {r.id: (r.country, r.phone_number, r.time_zone) for r in rows})


async def company_exists(session: AsyncSession, company_id: int) -> bool:
    return await session.get(Company, company_id) is not None


async def branch_names(session: AsyncSession, company_id: int | None) -> dict[int, str]:
    rows = await session.execute(select(Branch.id, Branch.name).where(*scope(Branch, company_id)))
    return {r.id: r.name for r in rows}
