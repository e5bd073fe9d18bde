"""Which company and which entities a request is about: shared by the policy, notification-settings and
appointment routes, so every one of them scopes and refuses the same way (another company's entity is a
404, as if it did not exist)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal
from api.params import MAX_ID
from api.problems import invalid, not_found
from models.policies import Level
from store import tenant_lookups

ScopeId = Annotated[str, Query(max_length=64)]


def company_of(principal: Principal, company_id: int | None) -> int:
    """The company a call is about: the key's own, or the one a super_admin names."""
    if principal.is_super_admin:
        if company_id is None:
            raise invalid("company_id", "required for a super_admin key")
        return company_id
    assert principal.company_id is not None
    return principal.company_id


def scope_id(level: Level, raw: str) -> str:
    """A scope id as stored in `configurable_id`: a UUID for staff, a positive integer otherwise."""
    try:
        if level is Level.STAFF:
            return str(uuid.UUID(raw))
        value = int(raw)
    except ValueError:
        kind = "a UUID" if level is Level.STAFF else "a positive integer"
        raise invalid("scope_id", f"a {level.value} id is {kind}") from None
    if not 0 < value <= MAX_ID:
        raise invalid("scope_id", f"a {level.value} id is a positive integer")
    return str(value)


async def ensure_entities_of_company(
    session: AsyncSession,
    company: int,
    branch_id: int | None,
    service_id: int | None,
    staff_id: uuid.UUID | None,
) -> None:
    """404 for any named branch, service or staff member that is not this company's."""
    foreign = await tenant_lookups.foreign_entity(session, company, branch_id, service_id, staff_id)
    if foreign is not None:
        raise not_found(*foreign)
