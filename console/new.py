"""Creating a callback by hand: the form, the customer type-ahead and the live phone check.

The form posts to the same `create` as `POST /v1/callbacks`, with the API's body model, so the console
refuses exactly what the API refuses. Each rendered form carries its own idempotency key: a form submitted
twice creates one callback.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api import callback_service as service
from api import schemas, text
from api.json_types import TEXT_INPUT
from api.problems import ApiProblem
from console.context import Console, Ctx, checked_form, form_value
from console.render import render
from models.callbacks import Priority
from store import tenant_lookups

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/callbacks/new", response_class=HTMLResponse)
async def new_callback_form(ctx: Console) -> Response:
    return await _new_form(ctx, {}, {})


async def _new_form(ctx: Ctx, values: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    async with ctx.deps.sessions() as session:
        branches = await tenant_lookups.branches(session, ctx.company)
        services = await tenant_lookups.services(session, ctx.company)
        staff = await tenant_lookups.active_staff(session, ctx.company)
    values.setdefault("idempotency_key", uuid.uuid4().hex)
    return render(
        ctx,
        ctx.request,
        "new.html",
        status,
        values=values,
        errors=errors,
        branches=branches,
        services=services,
        staff=staff,
        priorities=list(Priority),
    )


NEW_FIELDS = (
    "branch_id",
    "service_id",
    "customer_id",
    "customer_name",
    "phone_number",
    "email",
    "priority",
    "preferred_staff_id",
    "notes",
    "idempotency_key",
)


@router.post("/callbacks/new", response_class=HTMLResponse)
async def create_callback(ctx: Console) -> Response:
    form = await checked_form(ctx)
    values = {name: form_value(form, name) for name in NEW_FIELDS}
    body_fields: dict[str, Any] = {
        name: values[name] or None
        for name in ("branch_id", "service_id", "customer_id", "email", "preferred_staff_id", "notes")
    }
    body_fields["customer_name"] = values["customer_name"]
    body_fields["phone_number"] = values["phone_number"]
    body_fields["priority"] = values["priority"] or Priority.NORMAL.value
    if body_fields["branch_id"] is None:
        return await _new_form(ctx, values, {"branch_id": "required"}, 422)
    try:
        body = schemas.CreateCallback.model_validate(body_fields, context=TEXT_INPUT)
    except ValidationError as exc:
        errors = {str(e["loc"][0]) if e["loc"] else "body": e["msg"] for e in exc.errors()}
        return await _new_form(ctx, values, errors, 422)
    key = values["idempotency_key"]
    if not key or len(key) > 255 or not key.isascii() or not key.isprintable() or " " in key:
        key = uuid.uuid4().hex
    try:
        company_id = await _company_for_new(ctx, body.branch_id)
        created = await service.create(ctx.deps, ctx.principal, body, f"console-{key}", company_id=company_id)
    except ApiProblem as problem:
        errors = {e.field: e.message for e in problem.errors or []}
        if not errors:
            errors["body"] = problem.detail or problem.title
        return await _new_form(ctx, values, errors, problem.status)
    return RedirectResponse(f"/console/callbacks/{created.row['id']}?done=created", status_code=303)


async def _company_for_new(ctx: Ctx, branch_id: int) -> int:
    """The key's company; a super_admin creates in the company of the branch they chose."""
    if not ctx.principal.is_super_admin:
        return ctx.principal.company_for_write(None)
    async with ctx.deps.sessions() as session:
        for branch in await tenant_lookups.branches(session, None):
            if branch.id == branch_id:
                return branch.company_id
    raise ApiProblem(422, "branch_id: no such branch", errors=[])


@router.get("/customers", response_class=HTMLResponse)
async def customers(ctx: Console, customer_q: str = "") -> Response:
    term = customer_q.strip()[:100]
    try:
        term = text.single_line(term)
    except ValueError:
        term = ""
    async with ctx.deps.sessions() as session:
        found = await tenant_lookups.search_customers(session, ctx.company, term) if len(term) >= 2 else []
    return render(ctx, ctx.request, "_customers.html", customers=found, term=term)


@router.get("/phone-check", response_class=HTMLResponse)
async def phone_check(ctx: Console, phone_number: str = "", branch_id: str = "") -> Response:
    """The number as creation would store it, or the API's own message for why it is refused."""
    result: dict[str, str] = {}
    if phone_number.strip() and branch_id.isdigit():
        try:
            checked = text.single_line(phone_number)
            if len(checked) > 32:
                raise ValueError("String should have at most 32 characters")
            result["ok"] = await service.normalize_phone(ctx.deps, ctx.company, int(branch_id), checked)
        except ValueError as exc:
            result["error"] = str(exc)
        except ApiProblem as problem:
            # The message the create form shows next to the field, from the API's field list.
            result["error"] = problem.errors[0].message if problem.errors else problem.detail or problem.title
    return render(ctx, ctx.request, "_phone.html", result=result)
