"""Admin: staff (branch, services, capacity, language, working hours) with deactivate/activate buttons.
Deactivating goes through the API's own function: the member's keys stop at once and their open
callbacks are reassigned by their workflows."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import RedirectResponse, Response

from api.auth import Principal
from api.deps import Deps
from api.directory import Paging
from api.directory_bodies import StaffCreate, StaffUpdate
from api.problems import ApiProblem
from api.routes_staff import create_staff, get_staff, list_staff, set_staff_active, update_staff
from console.admin import FormField, Resource, action_guard, base_of, not_found_page, router_for
from console.context import Console
from console.render import set_flash


async def _list(principal: Principal, deps: Deps, paged: Paging) -> dict[str, Any]:
    return await list_staff(
        principal=principal, deps=deps, paged=paged, branch_id=None, is_active=None, company_id=None
    )


async def _read(principal: Principal, deps: Deps, staff_id: uuid.UUID) -> dict[str, Any]:
    return await get_staff(staff_id=staff_id, principal=principal, deps=deps)


STAFF = Resource(
    slug="staff",
    fields=(
        FormField(
            "company_id", "select", required=True, choices="companies", on_update=False, super_admin_only=True
        ),
        FormField("name", required=True),
        FormField("branch_id", "select", choices="branches"),
        FormField("email", "email"),
        FormField("phone_number", "tel", hint="hint.phone"),
        FormField("is_manager", "checkbox"),
        FormField("max_open_callbacks", "number", hint="hint.capacity"),
        FormField("locale", "select", choices="locales", initial="de"),
        FormField("service_ids", "multiselect", choices="services", empty=[]),
        FormField("working_hours", "json", hint="hint.working_hours"),
        FormField("external_id"),
    ),
    columns=("name", "email", "phone_number", "is_active", "is_manager", "max_open_callbacks", "external_id"),
    create_body=StaffCreate,
    update_body=StaffUpdate,
    list_rows=_list,
    read=_read,
    create=create_staff,
    update=update_staff,
    parse_id=uuid.UUID,
    actions=(
        ("deactivate", "admin.deactivate", lambda record: bool(record.get("is_active"))),
        ("activate", "admin.activate", lambda record: not record.get("is_active")),
    ),
)
router = router_for(STAFF)


async def _switch(ctx: Any, staff_id: str, active: bool) -> Response:
    refused = await action_guard(ctx, STAFF)
    if refused is not None:
        return refused
    try:
        switched = await set_staff_active(ctx.deps, ctx.principal, uuid.UUID(staff_id), active)
    except (ApiProblem, ValueError):
        return not_found_page(ctx)
    done = "activated" if active else "deactivated"
    response = RedirectResponse(f"{base_of(STAFF)}/{switched['id']}?done={done}", status_code=303)
    moved = switched.get("reassignment")
    if moved is not None:
        text = ctx.t("admin.reassigned", count=moved["signalled"])
        messages = [{"kind": "ok", "text": text}]
        if moved["failed"]:
            messages.append(
                {"kind": "error", "text": ctx.t("admin.reassign_failed", count=len(moved["failed"]))}
            )
        set_flash(response, ctx.state.signer, messages)
    return response


@router.post("/{staff_id}/deactivate")
async def deactivate(ctx: Console, staff_id: str) -> Response:
    return await _switch(ctx, staff_id, False)


@router.post("/{staff_id}/activate")
async def activate(ctx: Console, staff_id: str) -> Response:
    return await _switch(ctx, staff_id, True)
