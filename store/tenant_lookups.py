"""Small tenant-scoped lookups for forms: branches, services, staff and customers to choose from.

Every function takes the company to scope by (None only for a super_admin), like the callback queries,
so a picker can never offer another tenant's rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from models.tables import Branch, Company, Customer, Service, Staff


@dataclass(frozen=True)
class Choice:
    id: Any
    name: str
    company_id: int
    extra: str | None = None


def _scoped(column: Any, company_id: int | None) -> list[ColumnElement[bool]]:
    return [column == company_id] if company_id is not None else []


async def branches(session: AsyncSession, company_id: int | None) -> list[Choice]:
    rows = await session.execute(
        select(Branch.id, Branch.name, Branch.company_id)
        .where(*_scoped(Branch.company_id, company_id))
        .order_by(Branch.name, Branch.id)
    )
    return [Choice(id=r.id, name=r.name, company_id=r.company_id) for r in rows]


async def services(session: AsyncSession, company_id: int | None) -> list[Choice]:
    rows = await session.execute(
        select(Service.id, Service.name, Service.company_id, Branch.name.label("branch_name"))
        .outerjoin(Branch, Branch.id == Service.branch_id)
        .where(Service.is_active.is_(True), *_scoped(Service.company_id, company_id))
        .order_by(Service.name, Service.id)
    )
    return [Choice(id=r.id, name=r.name, company_id=r.company_id, extra=r.branch_name) for r in rows]


async def active_staff(session: AsyncSession, company_id: int | None) -> list[Choice]:
    rows = await session.execute(
        select(Staff.id, Staff.name, Staff.company_id)
        .where(Staff.is_active.is_(True), *_scoped(Staff.company_id, company_id))
        .order_by(Staff.name, Staff.id)
    )
    return [Choice(id=r.id, name=r.name, company_id=r.company_id) for r in rows]


async def staff_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Names for ids already tenant-checked by the caller (e.g. the staff of one callback's escalations)."""
    if not ids:
        return {}
    rows = await session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids)))
    return {r.id: r.name for r in rows}


@dataclass(frozen=True)
class CustomerChoice:
    id: int
    name: str
    phone_number: str | None
    email: str | None


async def search_customers(
    session: AsyncSession, company_id: int | None, term: str, *, limit: int = 10
) -> list[CustomerChoice]:
    """Customers whose name or phone contains `term`; at most `limit`, for a type-ahead picker."""
    term = term.strip()
    if not term:
        return []
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    matches: list[ColumnElement[bool]] = [Customer.name.ilike(f"%{escaped}%", escape="\\")]
    digits = "".join(ch for ch in term if ch.isdigit())
    if digits:
        matches.append(Customer.phone_number.like(f"%{digits}%"))
    rows = await session.execute(
        select(Customer.id, Customer.name, Customer.phone_number, Customer.email)
        .where(or_(*matches), *_scoped(Customer.company_id, company_id))
        .order_by(Customer.name, Customer.id)
        .limit(limit)
    )
    return [CustomerChoice(r.id, r.name, r.phone_number, r.email) for r in rows]


async def company_time_zone(session: AsyncSession, company_id: int | None) -> str:
    """The zone the console shows times in: the company's, UTC for a super_admin across companies."""
    if company_id is None:
        return "UTC"
    zone = await session.scalar(select(Company.time_zone).where(Company.id == company_id))
    return zone or "UTC"


async def foreign_entity(
    session: AsyncSession,
    company_id: int,
    branch_id: int | None,
    service_id: int | None,
    staff_id: uuid.UUID | None,
) -> tuple[str, int | uuid.UUID] | None:
    """The first of the named branch, service and staff member that is not this company's (or does not
    exist), as (kind, id); None when all of them are. Callers answer it as "not found", never as
    "another company's", so ids of other tenants cannot be probed."""
    named: tuple[tuple[str, type[Branch] | type[Service] | type[Staff], int | uuid.UUID | None], ...] = (
        ("branch", Branch, branch_id),
        ("service", Service, service_id),
        ("staff", Staff, staff_id),
    )
    for kind, table, value in named:
        if value is None:
            continue
        found = await session.scalar(
            select(func.count()).where(and_(table.id == value, table.company_id == company_id))
        )
        if not found:
            return kind, value
    return None


async def branch_phone_context(
    session: AsyncSession, branch_id: int, company_id: int | None
) -> tuple[str | None, str, str] | None:
    """What reading a national phone number needs: the branch's phone, its zone and its company's zone
    (api/phones.py picks the region from them); None when the branch is not the company's."""
    query = (
        select(Branch.phone_number, Branch.time_zone, Company.time_zone)
        .join(Company, Company.id == Branch.company_id)
        .where(Branch.id == branch_id, *_scoped(Branch.company_id, company_id))
    )
    found = (await session.execute(query)).first()
    return None if found is None else (found[0], found[1], found[2])


async def customer_company(session: AsyncSession, customer_id: int, company_id: int | None) -> int | None:
    """The customer's company, or None when there is no such customer in `company_id` (None = any)."""
    query = select(Customer.company_id).where(
        Customer.id == customer_id, *_scoped(Customer.company_id, company_id)
    )
    found: int | None = await session.scalar(query)
    return found
