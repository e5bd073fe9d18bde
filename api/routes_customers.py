"""/v1/customers: the people who ask to be called back and who book appointments.

A customer has a name, a phone number in E.164 (a national number is read in the company's country), an
email address, the language of their messages, optionally their own time zone (for dial windows) and the
tenant's `external_id`. The quota endpoint (/v1/customers/{id}/quota) lives with the policies; erasure
(GDPR) is its own flow: an erased customer's row is kept for the references to it and cannot be edited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, status

from api.auth import WORKERS, Admin, Principal, require
from api.deps import Deps
from api.directory import (
    ERASED_CUSTOMER,
    CompanyFilter,
    DepsDep,
    IntId,
    PagingDep,
    company_for_write,
    external_id_taken,
    page_of,
    phone,
    refuse,
    refuse_erased,
    region_of,
    scoped,
    sent,
)
from api.directory_bodies import CustomerCreate, CustomerOut, CustomerUpdate, Page
from api.problems import ApiProblem, FieldError
from models.tables import Customer
from store import directory
from store.db import transaction

router = APIRouter(prefix="/v1/customers", tags=["directory"])
# Personal data: the people who call customers back read them, service integrations do not.
CustomerReader = Annotated[Principal, Depends(require(WORKERS, "read customers"))]
NOT_NULL = CustomerUpdate.not_null


async def _prepared(session: Any, company: int, values: dict[str, Any]) -> dict[str, Any]:
    errors = [
        FieldError(field=n, message="must not be null") for n in NOT_NULL if n in values and values[n] is None
    ]
    if "phone_number" in values:
        region = region_of(await directory.region_hints(session, company), None)
        values["phone_number"] = phone(values["phone_number"], region, "phone_number", errors)
    refuse(errors)
    return values


async def create_customer(deps: Deps, principal: Principal, body: CustomerCreate) -> dict[str, Any]:
    async with transaction(deps.sessions) as session:
        company = await company_for_write(session, principal, body.company_id)
        values = await _prepared(session, company, body.model_dump(exclude={"company_id"}))
        try:
            row = await directory.insert_row(session, Customer, {**values, "company_id": company})
        except directory.ExternalIdTaken:
            raise external_id_taken("customer") from None
        return CustomerOut.model_validate(row, from_attributes=True).model_dump()


async def update_customer(
    deps: Deps, principal: Principal, customer_id: int, body: CustomerUpdate
) -> dict[str, Any]:
    values = sent(body)
    async with transaction(deps.sessions) as session:
        current = await scoped(session, Customer, customer_id, principal, "customer")
        if current.erased_at is not None:
            raise ApiProblem(409, f"customer {customer_id} was erased", slug="customer-erased")
        values = await _prepared(session, current.company_id, values)
        try:
            row = await directory.update_row(session, Customer, customer_id, values)
        except directory.ExternalIdTaken:
            raise external_id_taken("customer") from None
        return CustomerOut.model_validate(row, from_attributes=True).model_dump()


# --- routes ----------------------------------------------------------------------------------------


@router.get("", response_model=Page[CustomerOut])
async def list_customers(
    principal: CustomerReader, deps: DepsDep, paged: PagingDep, company_id: CompanyFilter = None
) -> dict[str, Any]:
    """The company's customers by name; `q` searches name, email, phone (digits) and external id."""
    async with deps.sessions() as session:
        found = await directory.list_rows(
            session,
            Customer,
            company_id=principal.scope(company_id),
            q=paged.q,
            page=paged.page,
            page_size=paged.page_size,
        )
    return page_of(CustomerOut, found, paged)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomerOut)
async def post_customer(body: CustomerCreate, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    return await create_customer(deps, principal, body)


async def get_customer(customer_id: int, principal: Principal, deps: Deps) -> dict[str, Any]:
    """The customer's row, erased or not (the staff console shows an erased one as such)."""
    async with deps.sessions() as session:
        row = await scoped(session, Customer, customer_id, principal, "customer")
        return CustomerOut.model_validate(row, from_attributes=True).model_dump()


@router.get("/{customer_id}", response_model=CustomerOut, responses=ERASED_CUSTOMER)
async def read_customer(customer_id: IntId, principal: CustomerReader, deps: DepsDep) -> dict[str, Any]:
    """The customer; 410 once erased (DELETE …?erase=true): gone for the API, the list still shows it."""
    async with deps.sessions() as session:
        row = await scoped(session, Customer, customer_id, principal, "customer")
        refuse_erased(row)
        return CustomerOut.model_validate(row, from_attributes=True).model_dump()


@router.patch("/{customer_id}", response_model=CustomerOut)
async def patch_customer(
    customer_id: IntId, body: CustomerUpdate, principal: Admin, deps: DepsDep
) -> dict[str, Any]:
    return await update_customer(deps, principal, customer_id, body)
