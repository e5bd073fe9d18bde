"""Admin: branches (time zone, country and subdivision for holidays, opening hours, closures, quiet hours,
dial window, phone). The forms save through api/routes_branches.py."""

from __future__ import annotations

from typing import Any

from api.auth import Principal
from api.deps import Deps
from api.directory import Paging
from api.directory_bodies import BranchCreate, BranchUpdate
from api.routes_branches import create_branch, get_branch, list_branches, update_branch
from console.admin import FormField, Resource, router_for


async def _list(principal: Principal, deps: Deps, paged: Paging) -> dict[str, Any]:
    return await list_branches(principal=principal, deps=deps, paged=paged, company_id=None)


async def _read(principal: Principal, deps: Deps, branch_id: int) -> dict[str, Any]:
    return await get_branch(branch_id=branch_id, principal=principal, deps=deps)


BRANCHES = Resource(
    slug="branches",
    fields=(
        FormField(
            "company_id", "select", required=True, choices="companies", on_update=False, super_admin_only=True
        ),
        FormField("name", required=True),
        FormField("time_zone", hint="hint.time_zone"),
        FormField("country", hint="hint.country"),
        FormField("subdivision", hint="hint.subdivision"),
        FormField("opening_hours", "json", empty={}, hint="hint.opening_hours"),
        FormField("closures", "json", empty=[], hint="hint.closures"),
        FormField("quiet_hours_start", "time"),
        FormField("quiet_hours_end", "time"),
        FormField("dial_window_start", "time"),
        FormField("dial_window_end", "time"),
        FormField("phone_number", "tel", hint="hint.phone"),
        FormField("email", "email"),
    ),
    columns=("name", "time_zone", "country", "subdivision", "phone_number"),
    create_body=BranchCreate,
    update_body=BranchUpdate,
    list_rows=_list,
    read=_read,
    create=create_branch,
    update=update_branch,
)
router = router_for(BRANCHES)
