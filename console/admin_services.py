"""Admin: services (branch, duration, price, Cal.com event type, active). The forms save through
api/routes_services.py."""

from __future__ import annotations

from typing import Any

from api.auth import Principal
from api.deps import Deps
from api.directory import Paging
from api.directory_bodies import ServiceCreate, ServiceUpdate
from api.routes_services import create_service, get_service, list_services, update_service
from console.admin import FormField, Resource, router_for


async def _list(principal: Principal, deps: Deps, paged: Paging) -> dict[str, Any]:
    return await list_services(
        principal=principal, deps=deps, paged=paged, branch_id=None, is_active=None, company_id=None
    )


async def _read(principal: Principal, deps: Deps, service_id: int) -> dict[str, Any]:
    return await get_service(service_id=service_id, principal=principal, deps=deps)


SERVICES = Resource(
    slug="services",
    fields=(
        FormField(
            "company_id", "select", required=True, choices="companies", on_update=False, super_admin_only=True
        ),
        FormField("name", required=True),
        FormField("branch_id", "select", choices="branches", hint="hint.all_branches"),
        FormField("duration_minutes", "number", initial="30"),
        FormField("price", initial="0.00"),
        FormField("calcom_event_type_id", "number"),
        FormField("is_active", "checkbox", initial=True),
        FormField("external_id"),
    ),
    columns=("name", "duration_minutes", "price", "calcom_event_type_id", "is_active", "external_id"),
    create_body=ServiceCreate,
    update_body=ServiceUpdate,
    list_rows=_list,
    read=_read,
    create=create_service,
    update=update_service,
)
router = router_for(SERVICES)
