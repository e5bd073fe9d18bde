"""Admin (super_admin keys): companies, with their webhook URL (refused on non-public addresses), the
write-only Cal.com webhook secret, and the webhook secret rotation (the new secret is shown once)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from api.auth import Principal
from api.deps import Deps
from api.directory import Paging
from api.directory_bodies import CompanyCreate, CompanyUpdate
from api.problems import ApiProblem
from api.routes_companies import (
    create_company,
    get_company,
    list_companies,
    rotate_webhook_secret,
    update_company,
)
from console.admin import FormField, Resource, action_guard, edit_page, not_found_page, router_for
from console.context import Console


async def _list(principal: Principal, deps: Deps, paged: Paging) -> dict[str, Any]:
    return await list_companies(principal=principal, deps=deps, paged=paged)


async def _read(principal: Principal, deps: Deps, company_id: int) -> dict[str, Any]:
    return await get_company(company_id=company_id, principal=principal, deps=deps)


async def _create(deps: Deps, principal: Principal, body: CompanyCreate) -> dict[str, Any]:
    return await create_company(deps, body)


COMPANIES = Resource(
    slug="companies",
    fields=(
        FormField("name", required=True),
        FormField("time_zone", hint="hint.time_zone", initial="Europe/Berlin"),
        FormField("currency", initial="EUR"),
        FormField("webhook_url", hint="hint.webhook_url"),
        FormField("calcom_webhook_secret", "secret", hint="hint.secret"),
        FormField("dial_window_start", "time"),
        FormField("dial_window_end", "time"),
    ),
    columns=("name", "time_zone", "currency", "webhook_url"),
    create_body=CompanyCreate,
    update_body=CompanyUpdate,
    list_rows=_list,
    read=_read,
    create=_create,
    update=update_company,
    super_admin_only=True,
    actions=(("webhook-secret", "admin.rotate", lambda record: bool(record.get("webhook_url"))),),
)
router = router_for(COMPANIES)


@router.post("/{company_id}/webhook-secret")
async def rotate(ctx: Console, company_id: str) -> Response:
    refused = await action_guard(ctx, COMPANIES)
    if refused is not None:
        return refused
    try:
        rotated = await rotate_webhook_secret(ctx.deps, ctx.principal, int(company_id))
    except (ApiProblem, ValueError):
        return not_found_page(ctx)
    return await edit_page(ctx, COMPANIES, rotated["id"], done="rotated", secret=rotated["webhook_secret"])
