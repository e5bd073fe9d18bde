"""/v1/staff: the people who call back, the services they handle, their working hours and absences.

Deactivating a staff member (`POST /v1/staff/{id}/deactivate`) takes effect at once: their API keys and
console sessions stop working on the next request, and every open callback they hold is reassigned by
its own workflow (the Signal `staff_deactivated`, workflows/callback.py): to another active colleague
picked by the assignment rules, or back to pending when nobody else can take it. The database is never
edited behind a workflow's back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.service import RPCError

from api.auth import Admin, Principal, Reader
from api.deps import Deps
from api.directory import (
    CompanyFilter,
    DepsDep,
    IntId,
    PagingDep,
    company_for_write,
    external_id_taken,
    phone,
    refuse,
    region_of,
    scoped,
    sent,
)
from api.directory_bodies import (
    AbsenceCreate,
    AbsenceOut,
    DeactivatedStaffOut,
    Page,
    StaffCreate,
    StaffOut,
    StaffUpdate,
)
from api.params import MAX_ID, QueryBool, Rfc3339
from api.problems import FieldError, not_found
from models.tables import Branch, Service, Staff
from starter.deadlines import TemporalCallFailed
from store import directory, staff_directory
from store.db import transaction

log = logging.getLogger("callbacks.api")
router = APIRouter(prefix="/v1/staff", tags=["directory"])
NOT_NULL = StaffUpdate.not_null
SIGNAL_CONCURRENCY = 8


def staff_out(row: Staff, service_ids: Sequence[int]) -> dict[str, Any]:
    out = StaffOut.model_validate({**_columns(row), "service_ids": list(service_ids)})
    return out.model_dump()


def _columns(row: Staff) -> dict[str, Any]:
    return {name: getattr(row, name) for name in StaffOut.model_fields if name != "service_ids"}


async def _prepared(session: AsyncSession, company: int, values: dict[str, Any]) -> dict[str, Any]:
    """The columns to write (service links apart), with every problem raised as one 422."""
    errors = [
        FieldError(field=n, message="must not be null") for n in NOT_NULL if n in values and values[n] is None
    ]
    branch = values.get("branch_id")
    if branch is not None and not await directory.ids_of_company(session, Branch, company, [branch]):
        errors.append(FieldError(field="branch_id", message=f"no such branch in company {company}"))
    wanted = values.get("service_ids") or []
    missing = sorted(set(wanted) - await directory.ids_of_company(session, Service, company, wanted))
    if missing:
        listed = ", ".join(map(str, missing))
        errors.append(
            FieldError(field="service_ids", message=f"no such service in company {company}: {listed}")
        )
    if "phone_number" in values:
        hints = await directory.region_hints(session, company)
        region = region_of(hints, values.get("branch_id", branch))
        values["phone_number"] = phone(values["phone_number"], region, "phone_number", errors)
    refuse(errors)
    if values.get("working_hours") is not None:
        values["working_hours"] = values["working_hours"].stored()
    return values


async def create_staff(deps: Deps, principal: Principal, body: StaffCreate) -> dict[str, Any]:
    async with transaction(deps.sessions) as session:
        company = await company_for_write(session, principal, body.company_id)
        values = {name: getattr(body, name) for name in StaffCreate.model_fields if name != "company_id"}
        values = await _prepared(session, company, values)
        service_ids = values.pop("service_ids")
        try:
            row = await directory.insert_row(session, Staff, {**values, "company_id": company})
        except directory.ExternalIdTaken:
            raise external_id_taken("staff member") from None
        await staff_directory.set_service_links(session, company, row.id, service_ids)
        return staff_out(row, service_ids)


async def update_staff(
    deps: Deps, principal: Principal, staff_id: uuid.UUID, body: StaffUpdate
) -> dict[str, Any]:
    values = sent(body)
    async with transaction(deps.sessions) as session:
        current = await scoped(session, Staff, staff_id, principal, "staff member")
        if "phone_number" in values and "branch_id" not in values:
            values["branch_id"] = current.branch_id  # the number is read in the branch's country
        values = await _prepared(session, current.company_id, values)
        service_ids = values.pop("service_ids", None)
        try:
            row = await directory.update_row(session, Staff, staff_id, values)
        except directory.ExternalIdTaken:
            raise external_id_taken("staff member") from None
        if service_ids is not None:
            await staff_directory.set_service_links(session, current.company_id, staff_id, service_ids)
        links = await staff_directory.service_links(session, [staff_id])
        return staff_out(row, links[staff_id])


async def reassign_open_callbacks(deps: Deps, staff_id: uuid.UUID, actor: str) -> dict[str, Any]:
    """Signal `staff_deactivated` to every open callback the staff member holds; their workflows
    reassign them. Returns how many were told, and the ids that could not be (try again)."""
    async with deps.sessions() as session:
        open_ids = await staff_directory.open_callbacks_of(session, staff_id)
    gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)

    async def tell(workflow_id: str) -> str | None:
        async with gate:
            try:
                await deps.callbacks.staff_deactivated(workflow_id, staff_id, actor)
            except (RPCError, TemporalCallFailed) as err:  # not reached in time: listed, to try again
                log.warning("could not signal callback %s about staff %s: %s", workflow_id, staff_id, err)
                return workflow_id
        return None

    failed = [found for found in await asyncio.gather(*map(tell, open_ids)) if found is not None]
    return {"signalled": len(open_ids) - len(failed), "failed": failed}


async def set_staff_active(
    deps: Deps, principal: Principal, staff_id: uuid.UUID, active: bool
) -> dict[str, Any]:
    """Activate, or deactivate and have the open callbacks reassigned (also when already inactive, so a
    second call retries callbacks the first could not reach)."""
    async with transaction(deps.sessions) as session:
        await scoped(session, Staff, staff_id, principal, "staff member")
        await staff_directory.set_active(session, staff_id, active)
    async with deps.sessions() as session:
        row = await scoped(session, Staff, staff_id, principal, "staff member")
        links = await staff_directory.service_links(session, [staff_id])
    out = staff_out(row, links[staff_id])
    if not active:
        out["reassignment"] = await reassign_open_callbacks(deps, staff_id, principal.actor)
    return out


# --- routes ----------------------------------------------------------------------------------------


@router.get("", response_model=Page[StaffOut])
async def list_staff(
    principal: Reader,
    deps: DepsDep,
    paged: PagingDep,
    branch_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    is_active: QueryBool | None = None,
    company_id: CompanyFilter = None,
) -> dict[str, Any]:
    """The company's staff by name; `q` searches name, email, phone and external id."""
    async with deps.sessions() as session:
        found = await directory.list_rows(
            session,
            Staff,
            company_id=principal.scope(company_id),
            q=paged.q,
            equal={"branch_id": branch_id, "is_active": is_active},
            page=paged.page,
            page_size=paged.page_size,
        )
        links = await staff_directory.service_links(session, [row.id for row in found.rows])
    items = [staff_out(row, links[row.id]) for row in found.rows]
    return {"items": items, "total": found.total, "page": paged.page, "page_size": paged.page_size}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=StaffOut)
async def post_staff(body: StaffCreate, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    return await create_staff(deps, principal, body)


@router.get("/{staff_id}", response_model=StaffOut)
async def get_staff(staff_id: uuid.UUID, principal: Reader, deps: DepsDep) -> dict[str, Any]:
    async with deps.sessions() as session:
        row = await scoped(session, Staff, staff_id, principal, "staff member")
        links = await staff_directory.service_links(session, [staff_id])
    return staff_out(row, links[staff_id])


@router.patch("/{staff_id}", response_model=StaffOut)
async def patch_staff(
    staff_id: uuid.UUID, body: StaffUpdate, principal: Admin, deps: DepsDep
) -> dict[str, Any]:
    """Change the fields sent; `service_ids` replaces the whole list. Use /deactivate to switch off."""
    return await update_staff(deps, principal, staff_id, body)


@router.post("/{staff_id}/deactivate", response_model=DeactivatedStaffOut)
async def deactivate_staff(staff_id: uuid.UUID, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    """Their keys stop working at once; each open callback they hold is reassigned by its workflow
    (asynchronously: a GET of the callback shows the new assignee a moment later)."""
    return await set_staff_active(deps, principal, staff_id, False)


@router.post("/{staff_id}/activate", response_model=StaffOut)
async def activate_staff(staff_id: uuid.UUID, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    return await set_staff_active(deps, principal, staff_id, True)


# --- absences --------------------------------------------------------------------------------------


@router.get("/{staff_id}/absences", response_model=list[AbsenceOut])
async def list_absences(
    staff_id: uuid.UUID,
    principal: Reader,
    deps: DepsDep,
    ending_after: Annotated[Rfc3339 | None, Query(description="only absences ending later")] = None,
) -> list[AbsenceOut]:
    async with deps.sessions() as session:
        await scoped(session, Staff, staff_id, principal, "staff member")
        rows = await staff_directory.absences(session, staff_id, ending_after=ending_after)
    return [AbsenceOut.model_validate(row, from_attributes=True) for row in rows]


@router.post("/{staff_id}/absences", status_code=status.HTTP_201_CREATED, response_model=AbsenceOut)
async def post_absence(
    staff_id: uuid.UUID, body: AbsenceCreate, principal: Admin, deps: DepsDep
) -> AbsenceOut:
    """Vacation, sickness or other time off in [starts_at, ends_at)."""
    async with transaction(deps.sessions) as session:
        staff = await scoped(session, Staff, staff_id, principal, "staff member")
        row = await staff_directory.add_absence(
            session,
            company_id=staff.company_id,
            staff_id=staff_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            kind=body.kind,
            note=body.note,
        )
        return AbsenceOut.model_validate(row, from_attributes=True)


@router.delete("/{staff_id}/absences/{absence_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_absence(staff_id: uuid.UUID, absence_id: IntId, principal: Admin, deps: DepsDep) -> Response:
    async with transaction(deps.sessions) as session:
        await scoped(session, Staff, staff_id, principal, "staff member")
        if not await staff_directory.delete_absence(session, staff_id, absence_id):
            raise not_found("absence", absence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
