"""The admin section's machinery: resource pages like Filament's (a list with search and paging, a create
form, an edit form) for the directory, built from one `Resource` description per page module
(console/admin_branches.py … admin_companies.py).

Every page calls the API's own functions (api/routes_branches.py …): the list and the read are the
routes' functions, the forms are validated with the API's body models and saved through the same create
and update functions, so the console refuses exactly what the API refuses, with the same words, shown
next to the field. Only admin and super_admin keys get here; a staff key is answered 403.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from api.auth import ADMINS, Principal
from api.deps import Deps
from api.directory import Paging
from api.json_types import TEXT_INPUT
from api.problems import ApiProblem
from console.context import Console, Ctx, checked_form, form_value
from console.render import render
from models.tables import Company
from store import directory, tenant_lookups

PAGE_SIZE = 25
Choices = list[tuple[str, str]]


@dataclass(frozen=True)
class FormField:
    """One input. `kind`: text, email, tel, number, time, checkbox, json (a textarea), select,
    multiselect, secret (write-only: left empty = unchanged)."""

    name: str
    kind: str = "text"
    required: bool = False
    choices: str | None = None  # a lookup of ChoiceLookups
    empty: Any = None  # what an empty input means (e.g. {} for opening hours)
    on_create: bool = True
    on_update: bool = True
    super_admin_only: bool = False
    hint: str | None = None  # an i18n key shown under the input
    initial: Any = None  # what a new form shows


@dataclass(frozen=True)
class Resource:
    slug: str  # the URL segment, also the i18n key `admin.<slug>`
    fields: Sequence[FormField]
    columns: Sequence[str]  # attributes shown in the list (i18n keys `f.<name>`)
    create_body: type[BaseModel]
    update_body: type[BaseModel]
    list_rows: Callable[[Principal, Deps, Paging], Awaitable[dict[str, Any]]]
    read: Callable[[Principal, Deps, Any], Awaitable[dict[str, Any]]]
    create: Callable[[Deps, Principal, Any], Awaitable[dict[str, Any]]]
    update: Callable[[Deps, Principal, Any, Any], Awaitable[dict[str, Any]]]
    parse_id: Callable[[str], Any] = int
    super_admin_only: bool = False
    # Extra buttons on the edit page: (action, i18n key, shown when) → posted to .../{id}/{action}.
    actions: Sequence[tuple[str, str, Callable[[Mapping[str, Any]], bool]]] = field(default_factory=tuple)


def may_administer(principal: Principal, resource: Resource | None = None) -> bool:
    if principal.role not in ADMINS:
        return False
    return not (resource is not None and resource.super_admin_only and not principal.is_super_admin)


def forbidden(ctx: Ctx) -> HTMLResponse:
    return render(ctx, ctx.request, "error.html", 403, title="403", text=ctx.t("admin.forbidden"))


def visible(resource: Resource, principal: Principal, creating: bool) -> list[FormField]:
    return [
        f
        for f in resource.fields
        if (f.on_create if creating else f.on_update) and (principal.is_super_admin or not f.super_admin_only)
    ]


async def choices(ctx: Ctx) -> dict[str, Choices]:
    async with ctx.deps.sessions() as session:
        branches = await tenant_lookups.branches(session, ctx.company)
        services = await tenant_lookups.services(session, ctx.company)
        companies = (
            await directory.list_rows(session, Company, company_id=None, page_size=500)
            if ctx.principal.is_super_admin
            else None
        )
    return {
        "branches": [(str(b.id), b.name) for b in branches],
        "services": [(str(s.id), s.name + (f" ({s.extra})" if s.extra else "")) for s in services],
        "companies": [(str(c.id), c.name) for c in companies.rows] if companies else [],
        "locales": [("de", "Deutsch"), ("en", "English")],
        "absence_kinds": [(kind, ctx.t(f"absence.{kind}")) for kind in ("vacation", "sick", "other")],
    }


def form_values(record: Mapping[str, Any], fields: Sequence[FormField]) -> dict[str, Any]:
    """An API record as the inputs show it: JSON as text, times as HH:MM, ids as strings."""
    values: dict[str, Any] = {}
    for f in fields:
        value = record.get(f.name)
        if f.kind == "json":
            values[f.name] = "" if value in (None, {}, []) else json.dumps(value, ensure_ascii=False)
        elif f.kind == "multiselect":
            values[f.name] = [str(v) for v in value or []]
        elif f.kind == "checkbox":
            values[f.name] = bool(value)
        elif f.kind == "secret":
            values[f.name] = ""
        elif isinstance(value, time):
            values[f.name] = value.strftime("%H:%M")
        else:
            values[f.name] = "" if value is None else str(value)
    return values


def read_body(
    form: Mapping[str, list[str]], fields: Sequence[FormField], creating: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(body for the API, values to show again, errors) from a posted form."""
    body: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.kind == "checkbox":
            body[f.name] = shown[f.name] = form_value(form, f.name) in ("on", "true", "1")
            continue
        if f.kind == "multiselect":
            raw_ids = [v for v in form.get(f.name, []) if v.strip()]
            shown[f.name] = raw_ids
            body[f.name] = [int(v) for v in raw_ids if v.isdigit()]
            continue
        raw = form_value(form, f.name)
        shown[f.name] = "" if f.kind == "secret" else raw
        if raw == "":
            if f.kind == "secret" or (creating and f.empty is None):
                continue  # the default (create) or unchanged (a secret)
            body[f.name] = f.empty
        elif f.kind == "json":
            try:
                body[f.name] = json.loads(raw)
            except ValueError as exc:
                errors[f.name] = f"not JSON: {exc}"
        else:
            body[f.name] = raw
    return body, shown, errors


def field_of(location: str, fields: Sequence[FormField]) -> str:
    """`opening_hours.mon` belongs to the input `opening_hours`; anything unknown to the form's top."""
    head = location.split(".", 1)[0]
    return head if any(f.name == head for f in fields) else "body"


def add_error(errors: dict[str, str], name: str, message: str) -> None:
    errors[name] = f"{errors[name]}; {message}" if name in errors else message


async def save(
    ctx: Ctx, resource: Resource, form: Mapping[str, list[str]], row_id: Any | None
) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, str]]:
    """Validate and save like the API; (saved record or None, values to show again, errors)."""
    creating = row_id is None
    fields = visible(resource, ctx.principal, creating)
    body, shown, errors = read_body(form, fields, creating)
    if errors:
        return None, shown, errors
    model = resource.create_body if creating else resource.update_body
    try:
        parsed = model.model_validate(body, context=TEXT_INPUT)
        if creating:
            saved = await resource.create(ctx.deps, ctx.principal, parsed)
        else:
            saved = await resource.update(ctx.deps, ctx.principal, row_id, parsed)
    except ValidationError as exc:
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            where = field_of(location, fields)
            add_error(errors, where, message if where == location else f"{location}: {message}")
        return None, shown, errors
    except ApiProblem as problem:
        for item in problem.errors or []:
            where = field_of(item.field, fields)
            add_error(errors, where, item.message if where == item.field else f"{item.field}: {item.message}")
        if not problem.errors:
            errors["body"] = problem.detail or problem.title
        return None, shown, errors
    return saved, shown, errors


def base_of(resource: Resource) -> str:
    return f"/console/admin/{resource.slug}"


async def form_page(
    ctx: Ctx,
    resource: Resource,
    row_id: Any | None,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    **extra: Any,
) -> Response:
    creating = row_id is None
    base = base_of(resource)
    return render(
        ctx,
        ctx.request,
        "admin_form.html",
        status,
        resource=resource,
        fields=visible(resource, ctx.principal, creating),
        values=values,
        errors=errors,
        choices=await choices(ctx),
        action=f"{base}/new" if creating else f"{base}/{row_id}",
        row_id=row_id,
        base=base,
        **extra,
    )


def not_found_page(ctx: Ctx) -> HTMLResponse:
    return render(ctx, ctx.request, "error.html", 404, title=ctx.t("error.not_found"), text="")


async def edit_page(ctx: Ctx, resource: Resource, raw_id: Any, **extra: Any) -> Response:
    """The edit form of one row (404 page when the key may not see it); `extra` goes to the template
    (e.g. `secret`: a webhook secret shown once, `done`: what just happened)."""
    try:
        record = await resource.read(ctx.principal, ctx.deps, resource.parse_id(str(raw_id)))
    except (ApiProblem, ValueError):
        return not_found_page(ctx)
    values = form_values(record, visible(resource, ctx.principal, False))
    return await form_page(ctx, resource, record["id"], values, {}, record=record, **extra)


DONE = ("created", "saved", "deactivated", "activated", "rotated")


def router_for(resource: Resource) -> APIRouter:
    """The list, create and edit pages of one resource under /console/admin/<slug>."""
    router = APIRouter(prefix=base_of(resource), include_in_schema=False)
    base = base_of(resource)

    @router.get("", response_class=HTMLResponse)
    async def list_page(ctx: Console, q: str = "", page: int = 1) -> Response:
        if not may_administer(ctx.principal, resource):
            return forbidden(ctx)
        term = q.strip()[:100]
        paged = Paging(q=term or None, page=max(1, min(page, 100_000)), page_size=PAGE_SIZE)
        try:
            found = await resource.list_rows(ctx.principal, ctx.deps, paged)
        except ApiProblem:
            found = {"items": [], "total": 0}
            term = ""
        pages = max(1, -(-found["total"] // PAGE_SIZE))

        def page_url(number: int) -> str:
            query = urlencode({k: v for k, v in (("q", term), ("page", number)) if v and v != 1})
            return f"{base}?{query}" if query else base

        return render(
            ctx,
            ctx.request,
            "admin_list.html",
            resource=resource,
            rows=found["items"],
            total=found["total"],
            q=term,
            page=paged.page,
            pages=pages,
            page_url=page_url,
            base=base,
        )

    @router.get("/new", response_class=HTMLResponse)
    async def new_form(ctx: Console) -> Response:
        if not may_administer(ctx.principal, resource):
            return forbidden(ctx)
        return await form_page(ctx, resource, None, {}, {})

    @router.post("/new", response_class=HTMLResponse)
    async def create(ctx: Console) -> Response:
        form = await checked_form(ctx)
        if not may_administer(ctx.principal, resource):
            return forbidden(ctx)
        saved, shown, errors = await save(ctx, resource, form, None)
        if saved is None:
            return await form_page(ctx, resource, None, shown, errors, 422)
        if saved.get("webhook_secret"):
            return await edit_page(ctx, resource, saved["id"], done="created", secret=saved["webhook_secret"])
        return RedirectResponse(f"{base}/{saved['id']}?done=created", status_code=303)

    @router.get("/{row_id}", response_class=HTMLResponse)
    async def edit_form(ctx: Console, row_id: str, done: str | None = None) -> Response:
        if not may_administer(ctx.principal, resource):
            return forbidden(ctx)
        return await edit_page(ctx, resource, row_id, done=done if done in DONE else None)

    @router.post("/{row_id}", response_class=HTMLResponse)
    async def update(ctx: Console, row_id: str) -> Response:
        form = await checked_form(ctx)
        if not may_administer(ctx.principal, resource):
            return forbidden(ctx)
        try:
            parsed_id = resource.parse_id(row_id)
            record = await resource.read(ctx.principal, ctx.deps, parsed_id)
        except (ApiProblem, ValueError):
            return not_found_page(ctx)
        saved, shown, errors = await save(ctx, resource, form, parsed_id)
        if saved is None:
            return await form_page(ctx, resource, record["id"], shown, errors, 422, record=record)
        if saved.get("webhook_secret"):
            return await edit_page(ctx, resource, row_id, done="saved", secret=saved["webhook_secret"])
        return RedirectResponse(f"{base}/{row_id}?done=saved", status_code=303)

    return router


async def action_guard(ctx: Ctx, resource: Resource) -> Response | None:
    """CSRF and role check of an extra action's post: a response to answer instead, or None."""
    await checked_form(ctx)
    return None if may_administer(ctx.principal, resource) else forbidden(ctx)


home_router = APIRouter(prefix="/console/admin", include_in_schema=False)


@home_router.get("", response_class=HTMLResponse)
async def admin_home(ctx: Console) -> Response:
    if not may_administer(ctx.principal):
        return forbidden(ctx)
    return RedirectResponse("/console/admin/branches", status_code=303)
