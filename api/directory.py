"""What every directory resource shares (api/routes_companies.py … routes_customers.py and the console's
admin pages): paging and search, the company a write goes to, tenant-checked loads (404 for another
company's row), field problems, and phone numbers read in the right country.

The resources' create and update functions live next to their routes and are what the console calls
too, so a form can never accept what the API refuses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api import text
from api.auth import Principal
from api.deps import Deps, get_deps
from api.params import MAX_ID
from api.phones import default_region, to_e164
from api.problems import PROBLEM_JSON, ApiProblem, FieldError, Problem, invalid, not_found
from models.tables import Customer
from store import directory
from store.directory import RegionHints, Row

DepsDep = Annotated[Deps, Depends(get_deps)]
IntId = Annotated[int, Path(gt=0, le=MAX_ID)]
CompanyFilter = Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")]
M = TypeVar("M", bound=BaseModel)


class Paging(BaseModel):
    q: str | None
    page: int
    page_size: int


def paging(
    q: Annotated[
        text.SingleLine | None,
        Query(max_length=100, description="part of the name (or email, phone, id)"),
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Paging:
    if q is not None:
        try:
            q = text.single_line(q)
        except ValueError as exc:
            raise invalid("q", str(exc)) from None
    return Paging(q=q or None, page=page, page_size=page_size)


PagingDep = Annotated[Paging, Depends(paging)]


def page_of(model: type[M], found: directory.RowPage, paged: Paging) -> dict[str, Any]:
    return {
        "items": [model.model_validate(row, from_attributes=True) for row in found.rows],
        "total": found.total,
        "page": paged.page,
        "page_size": paged.page_size,
    }


async def scoped(
    session: AsyncSession, table: type[Row], row_id: int | uuid.UUID, principal: Principal, thing: str
) -> Row:
    """The row when the key may see it; 404 otherwise (another company's row looks like a missing one)."""
    row = await directory.get_row(session, table, row_id, principal.scope())
    if row is None:
        raise not_found(thing, row_id)
    return row


# The answer of a read by id of an erased customer (documented on those operations).
ERASED_CUSTOMER: dict[int | str, dict[str, Any]] = {
    410: {
        "model": Problem,
        "content": {PROBLEM_JSON: {}},
        "description": "the customer was erased (DELETE …?erase=true): gone for reads by id",
    }
}


def refuse_erased(customer: Customer) -> None:
    """An erased customer is gone for the API (DELETE erased it): its blanked row stays for the references to
    it (appointments, quota history) and shows in lists with `erased_at`, but a read by id answers 410."""
    if customer.erased_at is not None:
        raise ApiProblem(
            410,
            f"customer {customer.id} was erased",
            slug="customer-erased",
            title="Customer erased",
            extra={"erased_at": customer.erased_at.isoformat()},
        )


async def company_for_write(session: AsyncSession, principal: Principal, requested: int | None) -> int:
    """The key's company, or the one a super_admin names (which must exist)."""
    company = principal.company_for_write(requested)
    if principal.is_super_admin and not await directory.company_exists(session, company):
        raise invalid("company_id", f"no company {company}")
    return company


def sent(body: BaseModel) -> dict[str, Any]:
    """The fields a PATCH body really carries (left-out fields stay as they are)."""
    return {name: getattr(body, name) for name in body.model_fields_set}


def refuse(errors: Sequence[FieldError]) -> None:
    """One 422 listing every problem found, when there is any."""
    if errors:
        raise ApiProblem(
            422,
            "; ".join(f"{e.field}: {e.message}" for e in errors[:5]),
            slug="validation-error",
            title="Invalid request",
            errors=errors,
        )


def external_id_taken(thing: str) -> ApiProblem:
    return ApiProblem(
        409,
        f"another {thing} of this company already has this external_id",
        slug="external-id-taken",
        title="external_id taken",
        errors=[FieldError(field="external_id", message="already used in this company")],
    )


def phone(raw: str | None, region: str | None, field: str, errors: list[FieldError]) -> str | None:
    """E.164, or None (with the problem added to `errors`) for a number that does not parse."""
    if raw is None or raw == "":
        return None
    try:
        return to_e164(raw, region)
    except ValueError as exc:
        errors.append(FieldError(field=field, message=str(exc)))
        return None


def region_of(hints: RegionHints, branch_id: int | None) -> str | None:
    """The country a national number is read in: the branch's country, else what its phone number and
    zone say, else the company's zone."""
    if branch_id is not None and branch_id in hints.branches:
        country, branch_phone, zone = hints.branches[branch_id]
        return country or default_region(branch_phone, zone, hints.company_zone)
    return default_region(None, None, hints.company_zone)
