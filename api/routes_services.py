"""/v1/services: what a company offers (the slot lookups of /v1/services/{id}/slots live in routes_slots.py).

A service may belong to one branch (or to all: `branch_id` null), has a duration, a price in the company's
currency, optionally a Cal.com event type (then callbacks for it get slot suggestions) and an
`external_id`, the tenant's own key that CSV imports are re-run by. Services are switched off with
`is_active: false` rather than deleted: callbacks and appointments keep pointing at them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from api.auth import Admin, Principal, Reader
from api.deps import Deps
from api.directory import (
    CompanyFilter,
    DepsDep,
    IntId,
    PagingDep,
    company_for_write,
    external_id_taken,
    page_of,
    refuse,
    scoped,
    sent,
)
from api.directory_bodies import Page, ServiceCreate, ServiceOut, ServiceUpdate
from api.params import MAX_ID, QueryBool
from api.problems import FieldError
from models.tables import Branch, Service
from store import directory
from store.db import transaction

router = APIRouter(prefix="/v1/services", tags=["directory"])
NOT_NULL = ServiceUpdate.not_null


async def _checked(session: Any, company: int, values: dict[str, Any]) -> None:
    errors = [
        FieldError(field=n, message="must not be null") for n in NOT_NULL if n in values and values[n] is None
    ]
    branch = values.get("branch_id")
    if branch is not None and not await directory.ids_of_company(session, Branch, company, [branch]):
        errors.append(FieldError(field="branch_id", message=f"no such branch in company {company}"))
    refuse(errors)


async def create_service(deps: Deps, principal: Principal, body: ServiceCreate) -> dict[str, Any]:
    async with transaction(deps.sessions) as session:
        company = await company_for_write(session, principal, body.company_id)
        values = body.model_dump(exclude={"company_id"})
        await _checked(session, company, values)
        try:
            row = await directory.insert_row(session, Service, {**values, "company_id": company})
        except directory.ExternalIdTaken:
            raise external_id_taken("service") from None
        return ServiceOut.model_validate(row, from_attributes=True).model_dump()


async def update_service(
    deps: Deps, principal: Principal, service_id: int, body: ServiceUpdate
) -> dict[str, Any]:
    values = sent(body)
    async with transaction(deps.sessions) as session:
        current = await scoped(session, Service, service_id, principal, "service")
        await _checked(session, current.company_id, values)
        try:
            row = await directory.update_row(session, Service, service_id, values)
        except directory.ExternalIdTaken:
            raise external_id_taken("service") from None
        return ServiceOut.model_validate(row, from_attributes=True).model_dump()


# --- routes ----------------------------------------------------------------------------------------


@router.get("", response_model=Page[ServiceOut])
async def list_services(
    principal: Reader,
    deps: DepsDep,
    paged: PagingDep,
    branch_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    is_active: QueryBool | None = None,
    company_id: CompanyFilter = None,
) -> dict[str, Any]:
    """The company's services by name; `q` searches name and external id."""
    async with deps.sessions() as session:
        found = await directory.list_rows(
            session,
            Service,
            company_id=principal.scope(company_id),
            q=paged.q,
            equal={"branch_id": branch_id, "is_active": is_active},
            page=paged.page,
            page_size=paged.page_size,
        )
    return page_of(ServiceOut, found, paged)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ServiceOut)
async def post_service(body: ServiceCreate, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    return await create_service(deps, principal, body)


@router.get("/{service_id}", response_model=ServiceOut)
async def get_service(service_id: IntId, principal: Reader, deps: DepsDep) -> dict[str, Any]:
    async with deps.sessions() as session:
        row = await scoped(session, Service, service_id, principal, "service")
        return ServiceOut.model_validate(row, from_attributes=True).model_dump()


@router.patch("/{service_id}", response_model=ServiceOut)
async def patch_service(
    service_id: IntId, body: ServiceUpdate, principal: Admin, deps: DepsDep
) -> dict[str, Any]:
    return await update_service(deps, principal, service_id, body)
