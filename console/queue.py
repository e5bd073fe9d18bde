"""The queue: every callback a key may see, filtered, sorted and paged by its URL, refreshed live, with bulk
actions on the selected rows. Reads go through `store/callback_queries.py`, the API's own list query.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api import callback_service as service
from api import text
from api.problems import ApiProblem
from console import actions
from console.context import Console, Ctx, checked_form, form_value, safe_next
from console.render import not_found, render, set_flash, validation_text
from models.callbacks import CallbackStatus, Priority
from store import callback_queries as queries
from store import tenant_lookups

SORTABLE = (
    "id",
    "customer_name",
    "phone_number",
    "priority",
    "status",
    "branch",
    "service",
    "assigned_to",
    "expires_at",
    "escalation_count",
    "created_at",
)
STATUS_VALUES = frozenset(s.value for s in CallbackStatus)
PRIORITY_VALUES = frozenset(p.value for p in Priority)

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
async def home() -> Response:
    return RedirectResponse("/console/queue", status_code=303)


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters as they appear in the URL, so every view can be bookmarked and shared.

    Unknown or malformed values are dropped rather than refused: a console link from an old bookmark
    should still open the queue.
    """

    statuses: tuple[CallbackStatus, ...] = ()
    priorities: tuple[Priority, ...] = ()
    branch_id: int | None = None
    overdue: str = ""
    callable: str = ""
    q: str = ""
    created_from: date | None = None
    created_to: date | None = None
    trashed: str = ""
    sort: str = "-created_at"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, list[str]]) -> QueueQuery:
        def first(name: str) -> str:
            values = params.get(name) or [""]
            return values[0].strip()

        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(first(name)) if first(name) else None
            except ValueError:
                return None

        statuses = tuple(CallbackStatus(v) for v in params.get("status", []) if v in STATUS_VALUES)
        priorities = tuple(Priority(v) for v in params.get("priority", []) if v in PRIORITY_VALUES)
        branch = first("branch_id")
        sort = first("sort") or "-created_at"
        if sort.lstrip("-") not in SORTABLE:
            sort = "-created_at"
        page = first("page")
        q = first("q")[:100]
        try:
            q = text.single_line(q)
        except ValueError:
            q = ""
        return cls(
            statuses=statuses,
            priorities=priorities,
            branch_id=int(branch) if branch.isdigit() and 0 < int(branch) < 2**63 else None,
            overdue=first("overdue") if first("overdue") in ("yes", "no") else "",
            callable=first("callable") if first("callable") in ("yes", "no") else "",
            q=q,
            created_from=day("created_from"),
            created_to=day("created_to"),
            trashed=first("trashed") if first("trashed") in ("with", "only") else "",
            sort=sort,
            page=min(int(page), 100_000) if page.isdigit() and int(page) > 0 else 1,
        )

    def params(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = [("status", s.value) for s in self.statuses]
        pairs += [("priority", p.value) for p in self.priorities]
        for name, value in (
            ("branch_id", str(self.branch_id) if self.branch_id else ""),
            ("overdue", self.overdue),
            ("callable", self.callable),
            ("q", self.q),
            ("created_from", self.created_from.isoformat() if self.created_from else ""),
            ("created_to", self.created_to.isoformat() if self.created_to else ""),
            ("trashed", self.trashed),
            ("sort", self.sort if self.sort != "-created_at" else ""),
            ("page", str(self.page) if self.page != 1 else ""),
        ):
            if value:
                pairs.append((name, value))
        return pairs

    def url(self, base: str = "/console/queue", **changes: Any) -> str:
        query = urlencode(replace(self, **changes).params())
        return f"{base}?{query}" if query else base

    def sort_url(self, key: str) -> str:
        """Ascending first; a second click on the same column reverses it."""
        return self.url(sort=f"-{key}" if self.sort == key else key, page=1)

    def to_filter(self, company_id: int | None, zone: ZoneInfo) -> queries.CallbackFilter:
        def start_of(day: date) -> datetime:
            return datetime.combine(day, datetime.min.time(), tzinfo=zone)

        return queries.CallbackFilter(
            company_id=company_id,
            statuses=self.statuses,
            priorities=self.priorities,
            branch_id=self.branch_id,
            overdue={"yes": True, "no": False}.get(self.overdue),
            callable_now={"yes": True, "no": False}.get(self.callable),
            q=self.q or None,
            created_from=start_of(self.created_from) if self.created_from else None,
            # The "until" day is inclusive, as people read a date range.
            created_to=start_of(self.created_to + timedelta(days=1)) if self.created_to else None,
            include_deleted=self.trashed == "with",
            only_deleted=self.trashed == "only",
        )


async def _queue_values(ctx: Ctx, query: QueueQuery) -> dict[str, Any]:
    size = ctx.state.settings.console_page_size
    trash_allowed = service.may_read_deleted(ctx.principal)
    if not trash_allowed:
        query = replace(query, trashed="")  # deleted callbacks are for admins only
    async with ctx.deps.sessions() as session:
        found = await queries.list_callbacks(
            session,
            query.to_filter(ctx.company, ctx.zone),
            now=ctx.now,
            sort=query.sort,
            page=query.page,
            page_size=size,
        )
    pages = max(1, math.ceil(found.total / size))
    return {
        "query": query,
        "rows": found.rows,
        "total": found.total,
        "pages": pages,
        "sortable": SORTABLE,
        "rows_url": query.url("/console/queue/rows"),
        "trash_allowed": trash_allowed,
    }


@router.get("/queue", response_class=HTMLResponse)
async def queue(ctx: Console) -> Response:
    query = QueueQuery.parse(parse_qs(ctx.request.url.query, keep_blank_values=True))
    async with ctx.deps.sessions() as session:
        branches = await tenant_lookups.branches(session, ctx.company)
        staff = await tenant_lookups.active_staff(session, ctx.company)
    values = await _queue_values(ctx, query)
    return render(
        ctx,
        ctx.request,
        "queue.html",
        branches=branches,
        staff=staff,
        statuses=list(CallbackStatus),
        priorities=list(Priority),
        **values,
    )


@router.get("/queue/rows", response_class=HTMLResponse)
async def queue_rows(ctx: Console) -> Response:
    """The result table alone, for the live refresh (htmx polls it with the page's own filters)."""
    query = QueueQuery.parse(parse_qs(ctx.request.url.query, keep_blank_values=True))
    return render(ctx, ctx.request, "_rows.html", **await _queue_values(ctx, query))


@router.get("/badge", response_class=HTMLResponse)
async def badge(ctx: Console) -> Response:
    count = await ctx.state.badge.get(ctx.deps, ctx.company)
    return render(ctx, ctx.request, "_badge.html", pending=count)


def _return_to(form: Mapping[str, list[str]]) -> str:
    target = safe_next(form_value(form, "return_to"))
    return target if target.startswith("/console/queue") else "/console/queue"


@router.post("/bulk/{action}")
async def bulk(ctx: Console, action: str) -> Response:
    form = await checked_form(ctx)
    t = ctx.t
    target = _return_to(form)
    ids: list[uuid.UUID] = []
    for raw in form.get("ids", []):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            continue
    response = RedirectResponse(target, status_code=303)
    if not ids:
        set_flash(response, ctx.state.signer, [{"kind": "error", "text": t("bulk.none")}])
        return response
    if action not in actions.BULK_ACTIONS:
        return not_found(ctx)
    try:
        result = await actions.bulk(ctx, action, ids, form)
    except ApiProblem as problem:
        set_flash(response, ctx.state.signer, [{"kind": "error", "text": problem.detail or problem.title}])
        return response
    except ValidationError as exc:
        set_flash(response, ctx.state.signer, [{"kind": "error", "text": validation_text(exc)}])
        return response
    except ValueError:
        set_flash(response, ctx.state.signer, [{"kind": "error", "text": "staff_id: not a valid id"}])
        return response
    label = t(f"action.{action}")
    messages = [
        {
            "kind": "ok" if result["failed"] == 0 else "error",
            "text": t("bulk.result", action=label, succeeded=result["succeeded"], failed=result["failed"]),
        }
    ]
    for item in result["results"]:
        if not item.ok and item.error:
            messages.append({"kind": "error", "text": f"{str(item.id)[:8]}: {item.error.get('detail')}"})
    set_flash(response, ctx.state.signer, messages)
    return response
