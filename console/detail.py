"""One callback: contact data, timeline, the actions its state allows, and suggested Cal.com slots.

The slots load after the page (htmx), so a slow or unreachable Cal.com never holds the page up. A refused
action re-renders the page with the engine's own words (e.g. "cannot mark contacted: the callback is
completed"), which is what staff need when the page they acted on was stale.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api import callback_service as service
from api.problems import ApiProblem
from api.routes_slots import calcom_problem, service_calendar
from calcom.errors import CalcomError
from calcom.finder import InvalidSlotSearch, ServiceNotOnCalcom
from config import Settings
from console import actions
from console.context import Console, Ctx, checked_form
from console.render import not_found, render, validation_text
from models.callbacks import AttemptOutcome, Priority
from store import tenant_lookups

SLOT_LIMIT = 5
SLOT_HORIZON = timedelta(days=14)

router = APIRouter(prefix="/console", include_in_schema=False)


def temporal_link(settings: Settings, workflow_id: str) -> str:
    base = settings.temporal_ui_url.rstrip("/")
    workflow = quote(workflow_id, safe="")
    return f"{base}/namespaces/{quote(settings.temporal_namespace, safe='')}/workflows/{workflow}"


async def _detail_page(
    ctx: Ctx, callback_id: uuid.UUID, *, status: int = 200, error: str | None = None, done: str | None = None
) -> Response:
    try:
        found = await service.detail(
            ctx.deps, ctx.principal, callback_id, include_deleted=service.may_read_deleted(ctx.principal)
        )
    except ApiProblem as problem:
        if problem.status != 404:
            raise
        return not_found(ctx, ctx.t("error.not_found_text"))
    people = {found["assigned_to"]} if found["assigned_to"] else set()
    for escalation in found["escalations"]:
        people |= {escalation["escalated_from"], escalation["escalated_to"]} - {None}
    for event in found["events"]:
        with contextlib.suppress(ValueError):
            people.add(uuid.UUID(event["actor"]))
    async with ctx.deps.sessions() as session:
        names = await tenant_lookups.staff_names(session, people)
        staff = await tenant_lookups.active_staff(session, found["company_id"])

    def who(value: Any) -> str:
        if value is None:
            return "–"
        try:
            return names.get(uuid.UUID(str(value)), str(value))
        except ValueError:
            return str(value)

    def show(key: str, value: Any) -> str:
        """A payload value as staff read it: names for staff ids, local times for timestamps."""
        if key.endswith("staff_id") or key in ("from", "to"):
            return who(value)
        if key.endswith("_at") and isinstance(value, str):
            with contextlib.suppress(ValueError):
                return ctx.fmt(datetime.fromisoformat(value))
        return str(value)

    return render(
        ctx,
        ctx.request,
        "detail.html",
        status,
        show=show,
        cb=found,
        actions=actions.allowed_actions(found),
        staff=staff,
        who=who,
        priorities=list(Priority),
        outcomes=list(AttemptOutcome),
        temporal_url=temporal_link(ctx.state.settings, found["workflow_id"]),
        submission=actions.new_nonce(),
        error=error,
        done=done,
    )


@router.get("/callbacks/{callback_id}", response_class=HTMLResponse)
async def detail(ctx: Console, callback_id: uuid.UUID, done: str | None = None) -> Response:
    return await _detail_page(ctx, callback_id, done=done if done in (*actions.ACTIONS, "created") else None)


@router.get("/callbacks/{callback_id}/slots", response_class=HTMLResponse)
async def slots(ctx: Console, callback_id: uuid.UUID) -> Response:
    """Loaded after the page: Cal.com may be slow or down, and the rest of the page must not wait for it."""
    try:
        row = await service.load(
            ctx.deps, ctx.principal, callback_id, include_deleted=service.may_read_deleted(ctx.principal)
        )
    except ApiProblem:
        return render(ctx, ctx.request, "_slots.html", slots=[], message=ctx.t("error.not_found"))
    stored = row.get("suggested_slots") or []
    if stored:
        return render(
            ctx, ctx.request, "_slots.html", slots=[_slot_view(ctx, s) for s in stored], message=None
        )
    if row["service_id"] is None:
        return render(ctx, ctx.request, "_slots.html", slots=[], message=ctx.t("detail.slots_no_service"))
    window = row.get("preferred_time_window") or {}
    try:
        calendar = await service_calendar(ctx.deps, ctx.principal, row["service_id"])
        start = max(ctx.now, datetime.fromisoformat(window["start"])) if window.get("start") else ctx.now
        found = await ctx.deps.slots.find_next_slots(calendar, start, SLOT_HORIZON, limit=SLOT_LIMIT)
    except ApiProblem as problem:
        return render(
            ctx,
            ctx.request,
            "_slots.html",
            slots=[],
            message=ctx.t("detail.slots_failed", message=problem.detail),
        )
    except (InvalidSlotSearch, ServiceNotOnCalcom, CalcomError) as exc:
        message = calcom_problem(exc).detail or str(exc)
        return render(
            ctx, ctx.request, "_slots.html", slots=[], message=ctx.t("detail.slots_failed", message=message)
        )
    views = [_slot_view(ctx, slot.model_dump(mode="json")) for slot in found]
    return render(
        ctx, ctx.request, "_slots.html", slots=views, message=None if views else ctx.t("detail.no_slots")
    )


def _slot_view(ctx: Ctx, slot: Any) -> str:
    if isinstance(slot, dict) and slot.get("start"):
        try:
            return ctx.fmt(datetime.fromisoformat(str(slot["start"])))
        except ValueError:
            pass
    return str(slot)


@router.post("/callbacks/{callback_id}/{action}", response_class=HTMLResponse)
async def act(ctx: Console, callback_id: uuid.UUID, action: str) -> Response:
    form = await checked_form(ctx)
    if action not in actions.ACTIONS:
        return not_found(ctx)
    try:
        await actions.act(ctx, callback_id, action, form)
    except ValidationError as exc:
        return await _detail_page(ctx, callback_id, status=422, error=validation_text(exc))
    except ApiProblem as problem:
        # The engine's refusal, word for word (e.g. "cannot mark contacted: the callback is completed").
        return await _detail_page(
            ctx, callback_id, status=problem.status, error=problem.detail or problem.title
        )
    return RedirectResponse(f"/console/callbacks/{callback_id}?done={action}#top", status_code=303)
