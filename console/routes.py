"""The staff console at /console: server-rendered pages over the same services as the JSON API.

Every read goes through `store.callback_queries` and every change through `callback_service`, the code
the `/v1/callbacks` routes run, so the console shows exactly what the API would answer and refuses
exactly what the API refuses, in the engine's words. Pages work without JavaScript (plain forms and
links); htmx only adds live refresh, the pending badge, the customer type-ahead, the phone check and the
lazily loaded Cal.com slots.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.staticfiles import StaticFiles

from api import callback_service as service
from api import schemas
from api.auth import WORKERS, Principal, Role, principal_of
from api.deps import Deps, get_deps
from api.problems import ApiProblem
from api.routes_slots import calcom_problem, service_calendar
from calcom.errors import CalcomError
from calcom.finder import InvalidSlotSearch, ServiceNotOnCalcom
from config import Settings
from console.i18n import LANGUAGES, pick_language, relative, translator
from console.session import (
    COOKIE_PATH,
    CSRF_FIELD,
    CSRF_HEADER,
    LANGUAGE_COOKIE,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    ConsoleSession,
    Signer,
)
from models.callbacks import Assign as AssignCommand
from models.callbacks import (
    AttemptOutcome,
    CallbackStatus,
    Cancel,
    ChangePriority,
    Complete,
    Escalate,
    MarkContacted,
    Priority,
    RecordAttempt,
    StaffAction,
    callback_workflow_id,
)
from rules.transitions import ALLOWED_FROM
from starter.client import StaffCommand
from store import api_keys, tenant_lookups
from store import callback_queries as queries
from store.db import transaction

HERE = Path(__file__).parent
FLASH_COOKIE = "cbc_flash"
TREND_DAYS = 14
SLOT_LIMIT = 5
SLOT_HORIZON = timedelta(days=14)
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
# The console's action names (URL segments) and the engine's actions behind them.
ACTIONS: dict[str, StaffAction] = {
    "assign": StaffAction.ASSIGN,
    "contacted": StaffAction.MARK_CONTACTED,
    "attempt": StaffAction.RECORD_ATTEMPT,
    "complete": StaffAction.COMPLETE,
    "escalate": StaffAction.ESCALATE,
    "priority": StaffAction.CHANGE_PRIORITY,
    "cancel": StaffAction.CANCEL,
}
SECURITY_HEADERS = {
    # No inline script or style anywhere: every asset is a file of ours, so the policy can be this strict.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix="/console", include_in_schema=False)


class SignInRequired(Exception):
    """Raised by any console page without a valid session: answered with a redirect to the sign-in."""


class PendingBadge:
    """The pending count per company, cached for a few seconds and computed once however many tabs ask.

    The seed had to switch its navigation badge off because every page view counted the whole table;
    here a count is one index-only query at most every `ttl` seconds per company.
    """

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._values: dict[int | None, tuple[float, int]] = {}
        self._locks: dict[int | None, asyncio.Lock] = {}

    async def get(self, deps: Deps, company_id: int | None) -> int:
        cached = self._values.get(company_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        lock = self._locks.setdefault(company_id, asyncio.Lock())
        async with lock:
            cached = self._values.get(company_id)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            async with deps.sessions() as session:
                value = await queries.pending_count(session, company_id)
            self._values[company_id] = (time.monotonic() + self._ttl, value)
            return value


@dataclass
class ConsoleState:
    settings: Settings
    signer: Signer
    templates: Environment
    badge: PendingBadge


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the console on `app`: pages, static files and the sign-in redirect."""
    secret = settings.console_secret.encode() if settings.console_secret else secrets.token_bytes(32)
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.state.console = ConsoleState(
        settings, Signer(secret), templates, PendingBadge(settings.console_badge_ttl_seconds)
    )
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(SignInRequired, _sign_in_redirect)
    app.add_exception_handler(CsrfRefused, _csrf_refused)


def _state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


async def _sign_in_redirect(request: Request, exc: Exception) -> Response:
    target = "/console/login"
    if request.method == "GET" and not request.headers.get("hx-request"):
        target += "?" + urlencode(
            {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
        )
    if request.headers.get("hx-request"):
        # An htmx poll cannot follow a redirect into a whole page; tell htmx to navigate instead.
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    t = translator(_language(request))
    return render(None, request, "error.html", 403, title="403", text=t("error.csrf"))


def _language(request: Request) -> str:
    return pick_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def _secure(request: Request, settings: Settings) -> bool:
    return settings.console_cookie_secure or request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    """Only paths inside the console: a sign-in link must not bounce the user to another site."""
    if not target or not target.startswith("/console") or target.startswith("//") or "\\" in target:
        return "/console/queue"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/console/queue"
    return target


@dataclass
class Ctx:
    """Everything a signed-in page needs: who, in which language and time zone, and the CSRF token."""

    request: Request
    deps: Deps
    state: ConsoleState
    principal: Principal
    session: ConsoleSession
    language: str
    zone: ZoneInfo
    now: datetime = field(default_factory=service.now)

    @property
    def t(self) -> Callable[..., str]:
        return translator(self.language)

    @property
    def csrf(self) -> str:
        return self.state.signer.csrf_token(self.session)

    @property
    def company(self) -> int | None:
        return self.principal.scope()

    def fmt(self, moment: datetime | None) -> str:
        if moment is None:
            return "–"
        local = service.aware(moment)
        assert local is not None
        pattern = "%d.%m.%Y %H:%M" if self.language == "de" else "%Y-%m-%d %H:%M"
        return local.astimezone(self.zone).strftime(pattern)

    def rel(self, moment: datetime) -> str:
        return relative(moment, self.now, self.language)


async def signed_in(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> Ctx:
    state = _state(request)
    session = state.signer.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired
    async with deps.sessions() as db:
        record = await api_keys.get_active(db, session.key_id)
        if record is None:
            raise SignInRequired
        principal = principal_of(record)
        if principal.role not in WORKERS:
            raise SignInRequired
        zone = await tenant_lookups.company_time_zone(db, principal.scope())
    return Ctx(request, deps, state, principal, session, _language(request), ZoneInfo(zone))


Console = Annotated[Ctx, Depends(signed_in)]


class CsrfRefused(Exception):
    pass


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body (what every console form posts); python-multipart is not needed for it."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True, max_num_fields=500)


def _one(form: Mapping[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()


async def checked_form(ctx: Ctx) -> dict[str, list[str]]:
    """The posted form, once it proved it came from one of our pages (token, and same origin if told)."""
    request = ctx.request
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc != host:
            raise CsrfRefused
    form = await read_form(request)
    token = request.headers.get(CSRF_HEADER) or _one(form, CSRF_FIELD)
    if not ctx.state.signer.csrf_ok(ctx.session, token):
        raise CsrfRefused
    return form


def render(
    ctx: Ctx | None, request: Request, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    state = _state(request)
    language = ctx.language if ctx else _language(request)
    base: dict[str, Any] = {
        "t": translator(language),
        "lang": language,
        "languages": LANGUAGES,
        "request": request,
        "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "ctx": ctx,
        "csrf": ctx.csrf if ctx else "",
        "principal": ctx.principal if ctx else None,
        "refresh_seconds": state.settings.console_refresh_seconds,
        "flash": _read_flash(request, state.signer),
    }
    html = state.templates.get_template(template).render(**base, **values)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if base["flash"]:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    return response


def _set_flash(response: Response, signer: Signer, messages: list[dict[str, str]]) -> None:
    payload = base64.urlsafe_b64encode(json.dumps(messages[:8]).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{signer.sign('flash', payload)}",
        max_age=60,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
    )


def _read_flash(request: Request, signer: Signer) -> list[dict[str, str]]:
    cookie = request.cookies.get(FLASH_COOKIE)
    if not cookie or cookie.count(".") != 1:
        return []
    payload, mac = cookie.split(".")
    if not signer.verify("flash", payload, mac):
        return []
    try:
        messages = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return []
    return [m for m in messages if isinstance(m, dict)]


def temporal_link(settings: Settings, callback_id: uuid.UUID) -> str:
    base = settings.temporal_ui_url.rstrip("/")
    workflow = quote(callback_workflow_id(callback_id), safe="")
    return f"{base}/namespaces/{quote(settings.temporal_namespace, safe='')}/workflows/{workflow}"


# --- sign in / out, language ---------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def home() -> Response:
    return RedirectResponse("/console/queue", status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None, error: str | None = None) -> Response:
    state = _state(request)
    token = state.signer.login_token()
    response = render(None, request, "login.html", next=_safe_next(next), login_token=token, error=error)
    _set_cookie(response, request, state.settings, LOGIN_COOKIE, token, max_age=LOGIN_FORM_SECONDS)
    return response


def _set_cookie(
    response: Response, request: Request, settings: Settings, name: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> Response:
    state = _state(request)
    form = await read_form(request)
    t = translator(_language(request))
    target = _safe_next(_one(form, "next"))

    def again(message: str, status: int) -> Response:
        token = state.signer.login_token()
        response = render(None, request, "login.html", status, next=target, login_token=token, error=message)
        _set_cookie(response, request, state.settings, LOGIN_COOKIE, token, max_age=LOGIN_FORM_SECONDS)
        return response

    if not state.signer.login_ok(request.cookies.get(LOGIN_COOKIE), _one(form, CSRF_FIELD)):
        return again(t("login.expired"), 403)
    secret = _one(form, "api_key")
    record = None
    if secret and secret.isascii() and len(secret) <= 128:
        async with transaction(deps.sessions) as session:
            record = await api_keys.authenticate(session, secret, service.now())
    if record is None:
        return again(t("login.bad_key"), 401)
    if Role(record.role) not in WORKERS:
        return again(t("login.wrong_role", role=record.role), 403)
    cookie, _ = state.signer.issue(record.id, state.settings.console_session_hours * 3600)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(
        response,
        request,
        state.settings,
        SESSION_COOKIE,
        cookie,
        max_age=int(state.settings.console_session_hours * 3600),
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(ctx: Console) -> Response:
    await checked_form(ctx)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


@router.get("/lang/{language}")
async def set_language(request: Request, language: str, next: str | None = None) -> Response:
    """Presentation only (no data changes), so a plain link may set it."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if language in LANGUAGES:
        _set_cookie(
            response, request, _state(request).settings, LANGUAGE_COOKIE, language, max_age=365 * 86400
        )
    return response


# --- queue ---------------------------------------------------------------------------------------


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
            q = schemas.single_line(q)
        except ValueError:
            q = ""
        return cls(
            statuses=statuses,
            priorities=priorities,
            branch_id=int(branch) if branch.isdigit() and 0 < int(branch) < 2**63 else None,
            overdue=first("overdue") if first("overdue") in ("yes", "no") else "",
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
            q=self.q or None,
            created_from=start_of(self.created_from) if self.created_from else None,
            # The "until" day is inclusive, as people read a date range.
            created_to=start_of(self.created_to + timedelta(days=1)) if self.created_to else None,
            include_deleted=self.trashed == "with",
            only_deleted=self.trashed == "only",
        )


async def _queue_values(ctx: Ctx, query: QueueQuery) -> dict[str, Any]:
    size = ctx.state.settings.console_page_size
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
    target = _safe_next(_one(form, "return_to"))
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
        _set_flash(response, ctx.state.signer, [{"kind": "error", "text": t("bulk.none")}])
        return response
    try:
        if action == "assign":
            staff = _one(form, "staff_id")
            staff_id = service.staff_for(ctx.principal, uuid.UUID(staff) if staff else None)
            actor = ctx.principal.actor
            result = await service.bulk(
                ctx.deps,
                ctx.principal,
                ids,
                StaffAction.ASSIGN,
                lambda: AssignCommand(staff_id=staff_id, actor=actor),
            )
        elif action == "complete":
            body = schemas.BulkCompleteBody(ids=ids, notes=_one(form, "notes"))
            actor = ctx.principal.actor
            result = await service.bulk(
                ctx.deps,
                ctx.principal,
                body.ids,
                StaffAction.COMPLETE,
                lambda: Complete(notes=body.notes, actor=actor),
            )
        else:
            return render(ctx, ctx.request, "error.html", 404, title=t("error.not_found"), text="")
    except ApiProblem as problem:
        _set_flash(response, ctx.state.signer, [{"kind": "error", "text": problem.detail or problem.title}])
        return response
    except ValidationError as exc:
        _set_flash(response, ctx.state.signer, [{"kind": "error", "text": _validation_text(exc)}])
        return response
    except ValueError:
        _set_flash(response, ctx.state.signer, [{"kind": "error", "text": "staff_id: not a valid id"}])
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
    _set_flash(response, ctx.state.signer, messages)
    return response


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


# --- detail and actions --------------------------------------------------------------------------


def allowed_actions(row: Mapping[str, Any]) -> list[str]:
    """The actions the engine would accept in the row's state (rules.transitions), none on a deleted row."""
    if row.get("deleted_at") is not None:
        return []
    status = CallbackStatus(row["status"])
    return [name for name, action in ACTIONS.items() if status in ALLOWED_FROM[action]]


async def _detail_page(
    ctx: Ctx, callback_id: uuid.UUID, *, status: int = 200, error: str | None = None, done: str | None = None
) -> Response:
    try:
        found = await service.detail(ctx.deps, ctx.principal, callback_id, include_deleted=True)
    except ApiProblem as problem:
        if problem.status != 404:
            raise
        t = ctx.t
        return render(
            ctx, ctx.request, "error.html", 404, title=t("error.not_found"), text=t("error.not_found_text")
        )
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
        actions=allowed_actions(found),
        staff=staff,
        who=who,
        priorities=list(Priority),
        outcomes=list(AttemptOutcome),
        temporal_url=temporal_link(ctx.state.settings, found["id"]),
        error=error,
        done=done,
    )


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
    values = {name: _one(form, name) for name in NEW_FIELDS}
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
        body = schemas.CreateCallback(**body_fields)
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
        term = schemas.single_line(term)
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
            checked = schemas.single_line(phone_number)
            if len(checked) > 32:
                raise ValueError("String should have at most 32 characters")
            result["ok"] = await service.normalize_phone(ctx.deps, ctx.company, int(branch_id), checked)
        except ValueError as exc:
            result["error"] = str(exc)
        except ApiProblem as problem:
            # The message the create form shows next to the field, from the API's field list.
            result["error"] = problem.errors[0].message if problem.errors else problem.detail or problem.title
    return render(ctx, ctx.request, "_phone.html", result=result)


@router.get("/callbacks/{callback_id}", response_class=HTMLResponse)
async def detail(ctx: Console, callback_id: uuid.UUID, done: str | None = None) -> Response:
    return await _detail_page(ctx, callback_id, done=done if done in (*ACTIONS, "created") else None)


@router.get("/callbacks/{callback_id}/slots", response_class=HTMLResponse)
async def slots(ctx: Console, callback_id: uuid.UUID) -> Response:
    """Loaded after the page: Cal.com may be slow or down, and the rest of the page must not wait for it."""
    try:
        row = await service.load(ctx.deps, ctx.principal, callback_id, include_deleted=True)
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


def _command(ctx: Ctx, action: str, form: Mapping[str, list[str]]) -> StaffCommand:
    """The engine command for a posted action form, validated by the API's own body models."""
    actor = ctx.principal.actor
    if action == "assign":
        staff = _one(form, "staff_id") or None
        body = schemas.AssignBody(staff_id=staff)
        return AssignCommand(staff_id=service.staff_for(ctx.principal, body.staff_id), actor=actor)
    if action == "contacted":
        return MarkContacted(actor=actor)
    if action == "attempt":
        attempt = schemas.AttemptBody(outcome=_one(form, "outcome"), notes=_one(form, "notes") or None)
        return RecordAttempt(outcome=attempt.outcome, notes=attempt.notes or None, actor=actor)
    if action == "complete":
        done = schemas.CompleteBody(notes=_one(form, "notes"))
        return Complete(notes=done.notes, actor=actor)
    if action == "escalate":
        raised = schemas.EscalateBody(reason=_one(form, "reason"), details=_one(form, "details") or None)
        return Escalate(reason=raised.reason, details=raised.details or None, actor=actor)
    if action == "cancel":
        cancelled = schemas.CancelBody(reason=_one(form, "reason") or None)
        return Cancel(reason=cancelled.reason or None, actor=actor)
    priority = schemas.PriorityBody(priority=_one(form, "priority"))
    return ChangePriority(priority=priority.priority, actor=actor)


@router.post("/callbacks/{callback_id}/{action}", response_class=HTMLResponse)
async def act(ctx: Console, callback_id: uuid.UUID, action: str) -> Response:
    form = await checked_form(ctx)
    if action not in ACTIONS:
        return render(ctx, ctx.request, "error.html", 404, title=ctx.t("error.not_found"), text="")
    try:
        command = _command(ctx, action, form)
        await service.act(ctx.deps, ctx.principal, callback_id, ACTIONS[action], command)
    except ValidationError as exc:
        return await _detail_page(ctx, callback_id, status=422, error=_validation_text(exc))
    except ApiProblem as problem:
        # The engine's refusal, word for word (e.g. "cannot mark contacted: the callback is completed").
        return await _detail_page(
            ctx, callback_id, status=problem.status, error=problem.detail or problem.title
        )
    return RedirectResponse(f"/console/callbacks/{callback_id}?done={action}#top", status_code=303)


# --- dashboard -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str


def trend_bars(days: list[tuple[date, int]], *, width: float = 560, height: float = 140) -> list[Bar]:
    """Geometry of the escalation chart, computed here so the template holds no arithmetic."""
    top = max((count for _, count in days), default=0) or 1
    slot = width / max(len(days), 1)
    bars = []
    for index, (day, count) in enumerate(days):
        bar_height = (count / top) * (height - 20)
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.15, 1),
                y=round(height - bar_height, 1),
                width=round(slot * 0.7, 1),
                height=round(bar_height, 1),
                count=count,
                label=day.strftime("%d.%m"),
            )
        )
    return bars


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(ctx: Console) -> Response:
    async with ctx.deps.sessions() as session:
        summary = await queries.summary(session, ctx.company, now=ctx.now)
        trend = await queries.escalations_per_day(
            session, ctx.company, now=ctx.now, days=TREND_DAYS, time_zone=str(ctx.zone.key)
        )
    most = max((load["open_callbacks"] for load in summary["open_per_staff"]), default=0) or 1
    return render(
        ctx,
        ctx.request,
        "dashboard.html",
        summary=summary,
        bars=trend_bars(trend),
        trend_total=sum(count for _, count in trend),
        most=most,
        statuses=list(CallbackStatus),
    )
