"""Admin: customers (name, phone in E.164, email, language, time zone). The forms save through
api/routes_customers.py."""

from __future__ import annotations

from typing import Any

from api.auth import Principal
from api.deps import Deps
from api.directory import Paging
from api.directory_bodies import CustomerCreate, CustomerUpdate
from api.routes_customers import create_customer, get_customer, list_customers, update_customer
from console.admin import FormField, Resource, router_for


async def _list(principal: Principal, deps: Deps, paged: Paging) -> dict[str, Any]:
    return await list_customers(principal=principal, deps=deps, paged=paged, company_id=None)


async def _read(principal: Principal, deps: Deps, customer_id: int) -> dict[str, Any]:
    return await get_customer(customer_id=customer_id, principal=principal, deps=deps)


CUSTOMERS = Resource(
    slug="customers",
    fields=(
        FormField(
            "company_id", "select", required=True, choices="companies", on_update=False, super_admin_only=True
        ),
        FormField("name", required=True),
        FormField("phone_number", "tel", hint="hint.phone"),
        FormField("email", "email"),
        FormField("locale", "select", choices="locales", initial="de"),
        FormField("time_zone", hint="hint.time_zone"),
        FormField("external_id"),
    ),
    columns=("name", "phone_number", "email", "locale", "external_id"),
    create_body=CustomerCreate,
    update_body=CustomerUpdate,
    list_rows=_list,
    read=_read,
    create=create_customer,
    update=update_customer,
)
router = router_for(CUSTOMERS)
