"""/v1/branches: where a company works, with the calendar its SLA clock and notifications follow.

A branch has a time zone (default: the company's), a country and subdivision for public holidays (checked
against the `holidays` package), opening hours per weekday (non-overlapping), its own closures, quiet hours
for notifications, a dial window, a phone number (stored in E.164; a national number is read in the
branch's country) and an email address. Every problem of a body is answered at once, by field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.auth import Admin, Principal, Reader
from api.deps import Deps
from api.directory import (
    CompanyFilter,
    DepsDep,
    IntId,
    PagingDep,
    company_for_write,
    page_of,
    phone,
    refuse,
    scoped,
    sent,
)
from api.directory_bodies import BranchCreate, BranchOut, BranchUpdate, Page
from api.directory_schemas import check_pair, check_subdivision, stored_closures
from api.phones import default_region
from api.problems import FieldError
from models.tables import Branch
from store import directory
from store.db import transaction

router = APIRouter(prefix="/v1/branches", tags=["directory"])
NOT_NULL = BranchUpdate.not_null


def _prepared(values: dict[str, Any], merged: dict[str, Any], company_zone: str | None) -> dict[str, Any]:
    """The columns to write, with every cross-field problem raised as one 422."""
    errors = [
        FieldError(field=name, message="must not be null")
        for name in NOT_NULL
        if name in values and values[name] is None
    ]
    if values.get("subdivision") is not None or ("country" in values and merged.get("subdivision")):
        try:
            subdivision = check_subdivision(merged.get("country"), merged["subdivision"])
            values["subdivision"] = subdivision
        except ValueError as exc:
            errors.append(FieldError(field="subdivision", message=str(exc)))
    for what in ("quiet_hours", "dial_window"):
        problem = check_pair(merged.get(f"{what}_start"), merged.get(f"{what}_end"), what)
        if problem:
            errors.append(FieldError(field=f"{what}_start", message=problem))
    if "phone_number" in values:
        region = merged.get("country") or default_region(None, merged.get("time_zone"), company_zone)
        values["phone_number"] = phone(values["phone_number"], region, "phone_number", errors)
    refuse(errors)
    if values.get("opening_hours") is not None:
        values["opening_hours"] = values["opening_hours"].stored()
    if values.get("closures") is not None:
        values["closures"] = stored_closures(values["closures"])
    return values


async def create_branch(deps: Deps, principal: Principal, body: BranchCreate) -> dict[str, Any]:
    async with transaction(deps.sessions) as session:
        company = await company_for_write(session, principal, body.company_id)
        hints = await directory.region_hints(session, company)
        values = {name: getattr(body, name) for name in BranchCreate.model_fields if name != "company_id"}
        values["time_zone"] = values["time_zone"] or hints.company_zone or "UTC"
        values = _prepared(values, dict(values), hints.company_zone)
        row = await directory.insert_row(session, Branch, {**values, "company_id": company})
        return BranchOut.model_validate(row, from_attributes=True).model_dump()


async def update_branch(
    deps: Deps, principal: Principal, branch_id: int, body: BranchUpdate
) -> dict[str, Any]:
    values = sent(body)
    async with transaction(deps.sessions) as session:
        current = await scoped(session, Branch, branch_id, principal, "branch")
        hints = await directory.region_hints(session, current.company_id)
        merged = {name: getattr(current, name) for name in BranchUpdate.model_fields} | values
        values = _prepared(values, merged, hints.company_zone)
        row = await directory.update_row(session, Branch, branch_id, values)
        return BranchOut.model_validate(row, from_attributes=True).model_dump()


# --- routes ----------------------------------------------------------------------------------------


@router.get("", response_model=Page[BranchOut])
async def list_branches(
    principal: Reader, deps: DepsDep, paged: PagingDep, company_id: CompanyFilter = None
) -> dict[str, Any]:
    """The company's branches by name; `q` searches name and email."""
    async with deps.sessions() as session:
        found = await directory.list_rows(
            session,
            Branch,
            company_id=principal.scope(company_id),
            q=paged.q,
            page=paged.page,
            page_size=paged.page_size,
        )
    return page_of(BranchOut, found, paged)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BranchOut)
async def post_branch(body: BranchCreate, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    return await create_branch(deps, principal, body)


@router.get("/{branch_id}", response_model=BranchOut)
async def get_branch(branch_id: IntId, principal: Reader, deps: DepsDep) -> dict[str, Any]:
    async with deps.sessions() as session:
        row = await scoped(session, Branch, branch_id, principal, "branch")
        return BranchOut.model_validate(row, from_attributes=True).model_dump()


@router.patch("/{branch_id}", response_model=BranchOut)
async def patch_branch(
    branch_id: IntId, body: BranchUpdate, principal: Admin, deps: DepsDep
) -> dict[str, Any]:
    """Change the fields sent (`null` clears an optional one); the hours and closures sent replace the
    stored ones as a whole."""
    return await update_branch(deps, principal, branch_id, body)
