"""/v1/import/{staff|services|customers}: a CSV file in, a report out.

Rows are matched to the company's rows by `external_id`: a new id is created, a known one updated where
the file differs, and left alone where it does not (`unchanged`), so the same file twice changes nothing
the second time. Refused rows are listed with their line and the reason; the valid ones are still
applied. `dry_run=true` reports the same and writes nothing. The applied rows are written in one
transaction. A staff row with `is_active` false deactivates that member as `/v1/staff/{id}/deactivate`
does: their open callbacks are reassigned by their workflows once the import is committed.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.auth import Admin, Principal
from api.deps import Deps
from api.directory import CompanyFilter, DepsDep, company_for_write
from api.directory_bodies import ImportReport, RefusedRow
from api.imports import (
    SPECS,
    Directory,
    ImportKind,
    ImportRow,
    RowRefused,
    changes,
    read_csv,
    read_row,
    upload_bytes,
)
from api.params import QueryBool
from api.routes_staff import reassign_open_callbacks
from models.tables import Staff
from store import directory, imports
from store.db import transaction

PREFIX = "/v1/import"
router = APIRouter(prefix=PREFIX, tags=["directory"])

CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "external_id,name,email\nS-1,Anna Becker,a@x.de\n",
            },
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


@router.post("/{kind}", response_model=ImportReport, openapi_extra=CSV_BODY)
async def import_csv(
    kind: ImportKind,
    request: Request,
    principal: Admin,
    deps: DepsDep,
    dry_run: Annotated[QueryBool, Query(description="check and report, write nothing")] = False,
    company_id: CompanyFilter = None,
) -> dict[str, Any]:
    """Import staff, services or customers from CSV (`text/csv`, or a multipart upload's `file` part)."""
    raw = upload_bytes(await request.body(), request.headers.get("content-type", ""))
    parsed = read_csv(raw, SPECS[kind], deps.settings.import_max_rows)
    return await run_import(deps, principal, kind, parsed.rows, dry_run=dry_run, company_id=company_id)


async def run_import(
    deps: Deps,
    principal: Principal,
    kind: ImportKind,
    rows: list[tuple[int, dict[str, str]]],
    *,
    dry_run: bool,
    company_id: int | None,
) -> dict[str, Any]:
    spec = SPECS[kind]
    refused: list[RefusedRow] = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    deactivated: list[uuid.UUID] = []
    async with transaction(deps.sessions) as session:
        company = await company_for_write(session, principal, company_id)
        known = Directory(
            company=company,
            hints=await directory.region_hints(session, company),
            branches=await imports.branches(session, company) if spec.has_branch else [],
            services=await imports.services_by_external_id(session, company) if spec.has_services else {},
        )
        valid: list[ImportRow] = []
        seen: dict[str, int] = {}
        for line, cells in rows:
            try:
                row = read_row(line, cells, spec, known)
            except RowRefused as why:
                refused.append(
                    RefusedRow(row=line, external_id=cells.get("external_id") or None, reason=str(why))
                )
                continue
            if row.external_id in seen:
                reason = f"external_id appears again (first on line {seen[row.external_id]})"
                refused.append(RefusedRow(row=line, external_id=row.external_id, reason=reason))
                continue
            seen[row.external_id] = line
            valid.append(row)
        existing = await imports.existing_by_external_id(session, spec.table, company, list(seen))
        links = (
            await imports.service_links(session, [r.id for r in existing.values()])
            if spec.has_services
            else {}
        )
        inserts: list[dict[str, Any]] = []
        new_links: dict[Any, set[int]] = {}
        for row in valid:
            current = existing.get(row.external_id)
            if current is None:
                counts["created"] += 1
                values = {
                    **spec.defaults,
                    **row.values,
                    "external_id": row.external_id,
                    "company_id": company,
                }
                if spec.table is Staff:
                    values["id"] = uuid.uuid4()
                    new_links[values["id"]] = row.service_ids or set()
                inserts.append(values)
                continue
            changed = changes(row, current, links.get(current.id))
            if not changed:
                counts["unchanged"] += 1
                continue
            counts["updated"] += 1
            if "service_ids" in changed:
                new_links[current.id] = changed.pop("service_ids")
            if changed.get("is_active") is False and spec.table is Staff:
                deactivated.append(current.id)
            if not dry_run and changed:
                await imports.update_one(session, spec.table, current.id, changed)
        if not dry_run:
            await imports.insert_many(session, spec.table, inserts)
            if new_links:
                await imports.replace_service_links(session, company, new_links)
    if not dry_run:
        for staff_id in deactivated:
            await reassign_open_callbacks(deps, staff_id, principal.actor)
    return ImportReport(
        kind=kind.value,
        dry_run=dry_run,
        rows=len(rows),
        valid=len(valid),
        refused=refused,
        deactivated=len(deactivated),
        **counts,
    ).model_dump()
