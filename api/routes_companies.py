"""/v1/companies: the tenants themselves.

A super_admin creates and renames companies; a company's admin sets its time zone, currency, dial window,
webhook URL and Cal.com webhook secret, and rotates its webhook secret. Other keys read their own company.
Secrets are never answered back, except a webhook secret the call itself generated (shown once).

Webhook secret rotation: a new secret is generated and signs every webhook from then on; the previous one
is kept as `webhook_secret_previous` until `webhook_secret_previous_until` (now + the grace period,
`CALLBACKS_WEBHOOK_SECRET_GRACE_HOURS`, 24 h by default) so a receiver can accept either while it switches.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, status

from api import callback_service as service
from api.auth import Admin, Principal, Reader, Role, require
from api.deps import Deps
from api.directory import DepsDep, IntId, PagingDep, refuse, scoped, sent
from api.directory_bodies import CompanyCreate, CompanyOut, CompanyUpdate, Page
from api.directory_schemas import check_pair
from api.problems import ApiProblem, FieldError
from api.webhook_urls import WebhookUrlRefused, check_webhook_url
from channels.webhook import new_secret
from models.tables import Company
from store import directory
from store.db import transaction

router = APIRouter(prefix="/v1/companies", tags=["directory"])
SuperAdmin = Annotated[
    Principal, Depends(require(frozenset({Role.SUPER_ADMIN}), "create companies (super_admin only)"))
]


def company_out(row: Company, webhook_secret: str | None = None) -> dict[str, Any]:
    return CompanyOut(
        id=row.id,
        name=row.name,
        time_zone=row.time_zone,
        currency=row.currency,
        webhook_url=row.webhook_url,
        webhook_secret_set=bool(row.webhook_secret),
        webhook_secret_previous_until=row.webhook_secret_previous_until,
        calcom_webhook_secret_set=bool(row.calcom_webhook_secret),
        dial_window_start=row.dial_window_start,
        dial_window_end=row.dial_window_end,
        created_at=row.created_at,
        updated_at=row.updated_at,
        webhook_secret=webhook_secret,
    ).model_dump()


async def _checked(deps: Deps, values: dict[str, Any], current: Company | None) -> list[FieldError]:
    errors: list[FieldError] = []
    url = values.get("webhook_url")
    if url:
        try:
            await check_webhook_url(url, allow_private=deps.settings.webhook_allow_private)
        except WebhookUrlRefused as refused:
            errors.append(FieldError(field="webhook_url", message=str(refused)))
    merged = {
        key: values.get(key, getattr(current, key) if current else None)
        for key in ("dial_window_start", "dial_window_end")
    }
    problem = check_pair(merged["dial_window_start"], merged["dial_window_end"], "dial_window")
    if problem:
        errors.append(FieldError(field="dial_window_start", message=problem))
    return errors


async def create_company(deps: Deps, body: CompanyCreate) -> dict[str, Any]:
    values = body.model_dump()
    refuse(await _checked(deps, values, None))
    secret = new_secret() if values.get("webhook_url") else None
    async with transaction(deps.sessions) as session:
        row = await directory.insert_row(session, Company, {**values, "webhook_secret": secret})
    return company_out(row, secret)


async def update_company(
    deps: Deps, principal: Principal, company_id: int, body: CompanyUpdate
) -> dict[str, Any]:
    values = sent(body)
    if "name" in values and not principal.is_super_admin:
        raise ApiProblem(403, "only a super_admin key may rename a company", slug="forbidden")
    null = [name for name in CompanyUpdate.not_null if name in values and values[name] is None]
    refuse([FieldError(field=name, message="must not be null") for name in null])
    async with transaction(deps.sessions) as session:
        current = await scoped(session, Company, company_id, principal, "company")
        refuse(await _checked(deps, values, current))
        secret = None
        if values.get("webhook_url") and not current.webhook_secret:
            secret = values["webhook_secret"] = new_secret()
        row = await directory.update_row(session, Company, company_id, values)
    return company_out(row, secret)


async def rotate_webhook_secret(deps: Deps, principal: Principal, company_id: int) -> dict[str, Any]:
    grace = timedelta(hours=deps.settings.webhook_secret_grace_hours)
    secret = new_secret()
    async with transaction(deps.sessions) as session:
        current = await scoped(session, Company, company_id, principal, "company")
        values: dict[str, Any] = {"webhook_secret": secret}
        if current.webhook_secret:
            values["webhook_secret_previous"] = current.webhook_secret
            values["webhook_secret_previous_until"] = service.now() + grace
        row = await directory.update_row(session, Company, company_id, values)
    return company_out(row, secret)


# --- routes ----------------------------------------------------------------------------------------


@router.get("", response_model=Page[CompanyOut])
async def list_companies(principal: Reader, deps: DepsDep, paged: PagingDep) -> dict[str, Any]:
    """Every company for a super_admin (`q` searches names); a company key sees its own."""
    async with deps.sessions() as session:
        found = await directory.list_rows(
            session,
            Company,
            company_id=principal.scope(),
            q=paged.q,
            page=paged.page,
            page_size=paged.page_size,
        )
    items = [company_out(row) for row in found.rows]
    return {"items": items, "total": found.total, "page": paged.page, "page_size": paged.page_size}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CompanyOut)
async def post_company(body: CompanyCreate, principal: SuperAdmin, deps: DepsDep) -> dict[str, Any]:
    """A new tenant. With a `webhook_url`, its webhook secret is generated and answered once."""
    return await create_company(deps, body)


@router.get("/{company_id}", response_model=CompanyOut, response_model_exclude={"webhook_secret"})
async def get_company(company_id: IntId, principal: Reader, deps: DepsDep) -> dict[str, Any]:
    async with deps.sessions() as session:
        return company_out(await scoped(session, Company, company_id, principal, "company"))


@router.patch("/{company_id}", response_model=CompanyOut)
async def patch_company(
    company_id: IntId, body: CompanyUpdate, principal: Admin, deps: DepsDep
) -> dict[str, Any]:
    """Change the fields sent. Renaming is for a super_admin; `calcom_webhook_secret` is write-only."""
    return await update_company(deps, principal, company_id, body)


@router.post("/{company_id}/webhook-secret", response_model=CompanyOut)
async def post_webhook_secret(company_id: IntId, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    """Rotate the webhook secret: the new one is answered once and signs from now on; the previous one
    stays known until `webhook_secret_previous_until`, so receivers may accept either meanwhile."""
    return await rotate_webhook_secret(deps, principal, company_id)
