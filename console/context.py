"""What every console page starts from: the signed-in user (`Ctx`) and a posted form that passed CSRF.

A page declares `ctx: Console` and gets a `Ctx` only for a live session of a key that may work the queue;
anything else becomes `SignInRequired`, which `console/app.py` answers with the sign-in redirect. The key
is re-read on every request, so revoking it ends its sessions at once (`console/session.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from jinja2 import Environment

from api import callback_service as service
from api.auth import WORKERS, Principal, principal_of
from api.deps import Deps, get_deps
from config import Settings
from console import formats
from console.badge import PendingBadge
from console.formats import pick_language
from console.i18n import translator
from console.session import CSRF_FIELD, CSRF_HEADER, LANGUAGE_COOKIE, SESSION_COOKIE, ConsoleSession, Signer
from store import api_keys, console_sessions, tenant_lookups


class SignInRequired(Exception):
    """Raised by any console page without a valid session: answered with a redirect to the sign-in."""


class CsrfRefused(Exception):
    """A post without our token or from a foreign origin: answered 403, and nothing was changed."""


@dataclass
class ConsoleState:
    settings: Settings
    signer: Signer
    templates: Environment
    badge: PendingBadge


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def language_of(request: Request) -> str:
    return pick_language(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def safe_next(target: str | None) -> str:
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
        return formats.moment(local, self.zone, self.language)

    def rel(self, moment: datetime) -> str:
        return formats.relative(moment, self.now, self.language)

    def num(self, value: float) -> str:
        return formats.number(value, self.language)

    def pct(self, ratio: float) -> str:
        return formats.percent(ratio, self.language)


async def signed_in(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> Ctx:
    state = console_state(request)
    session = state.signer.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired
    async with deps.sessions() as db:
        record = await api_keys.get_active(db, session.key_id)
        if record is None or not record.staff_active:
            raise SignInRequired
        if not await console_sessions.is_live(db, session.nonce, session.key_id, service.now()):
            raise SignInRequired  # signed out (anywhere), or a cookie of a session never opened here
        principal = principal_of(record)
        if principal.role not in WORKERS:
            raise SignInRequired
        zone = await tenant_lookups.company_time_zone(db, principal.scope())
    return Ctx(request, deps, state, principal, session, language_of(request), ZoneInfo(zone))


Console = Annotated[Ctx, Depends(signed_in)]


async def session_principal(request: Request, deps: Deps) -> Principal | None:
    """The key behind a live console session cookie, for the codec server (api/codec_server.py reads
    it through `app.state`; the console sets the cookie for /codec too at sign-in)."""
    session = console_state(request).signer.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    async with deps.sessions() as db:
        record = await api_keys.get_active(db, session.key_id)
    return principal_of(record) if record is not None else None


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body (what every console form posts); python-multipart is not needed for it."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True, max_num_fields=500)


def form_value(form: Mapping[str, list[str]], name: str) -> str:
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
    token = request.headers.get(CSRF_HEADER) or form_value(form, CSRF_FIELD)
    if not ctx.state.signer.csrf_ok(ctx.session, token):
        raise CsrfRefused
    return form
