"""Services as the Cal.com slot finder sees them: event type and home time zone."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.calcom import ServiceCalendar
from models.tables import Branch, Company, Service


async def load_service_calendar(
    session: AsyncSession, service_id: int, company_id: int | None = None
) -> ServiceCalendar | None:
    """The service's Cal.com event type and time zone; None when it does not exist (in that company)."""
    query = (
        select(
            Service.id,
            Service.company_id,
            Service.calcom_event_type_id,
            Service.duration_minutes,
            func.coalesce(Branch.time_zone, Company.time_zone),
        )
        .join(Company, Company.id == Service.company_id)
        .outerjoin(Branch, Branch.id == Service.branch_id)
        .where(Service.id == service_id)
    )
    if company_id is not None:
        query = query.where(Service.company_id == company_id)
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    return ServiceCalendar(
        service_id=row[0], company_id=row[1], event_type_id=row[2], duration_minutes=row[3], time_zone=row[4]
    )
