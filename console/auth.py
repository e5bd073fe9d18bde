"""Signing in with an API key, signing out, and the language switch.

Only keys whose role works the queue (staff, admin, super_admin) may sign in; the session cookie then
names the key, never holds it (`console/session.py`). The sign-in form has no session yet, so its CSRF
proof is a double-submit token in a short-lived cookie.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import callback_service as service
from api.auth import WORKERS, Role
from api.deps import Deps, get_deps
from console.context import (
    Console,
    checked_form,
    console_state,
    form_value,
    language_of,
    read_form,
    safe_next,
)
from console.i18n import LANGUAGES, translator
from console.render import render, set_cookie
from console.session import (
    CODEC_COOKIE_PATH,
    COOKIE_PATH,
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
)
from store import api_keys, console_sessions
from store.db import transaction

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None, error: str | None = None) -> Response:
    state = console_state(request)
    token = state.signer.login_token()
    response = render(None, request, "login.html", next=safe_next(next), login_token=token, error=error)
    set_cookie(response, request, state.settings, LOGIN_COOKIE, token, max_age=LOGIN_FORM_SECONDS)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> Response:
    state = console_state(request)
    form = await read_form(request)
    t = translator(language_of(request))
    target = safe_next(form_value(form, "next"))

    def again(message: str, status: int) -> Response:
        token = state.signer.login_token()
        response = render(None, request, "login.html", status, next=target, login_token=token, error=message)
        set_cookie(response, request, state.settings, LOGIN_COOKIE, token, max_age=LOGIN_FORM_SECONDS)
        return response

    if not state.signer.login_ok(request.cookies.get(LOGIN_COOKIE), form_value(form, CSRF_FIELD)):
        return again(t("login.expired"), 403)
    secret = form_value(form, "api_key")
    record = None
    if secret and secret.isascii() and len(secret) <= 128:
        async with transaction(deps.sessions) as session:
            record = await api_keys.authenticate(session, secret, service.now())
    if record is None or not record.staff_active:
        return again(t("login.bad_key"), 401)
    if Role(record.role) not in WORKERS:
        return again(t("login.wrong_role", role=record.role), 403)
    cookie, opened = state.signer.issue(record.id)
    async with transaction(deps.sessions) as session:
        expires = datetime.fromtimestamp(opened.expires, UTC)
        await console_sessions.open_session(session, opened.nonce, record.id, expires)
    response = RedirectResponse(target, status_code=303)
    for path in (COOKIE_PATH, CODEC_COOKIE_PATH):  # the codec server reads the same session
        set_cookie(
            response,
            request,
            state.settings,
            SESSION_COOKIE,
            cookie,
            max_age=int(state.settings.console_session_hours * 3600),
            path=path,
        )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(ctx: Console) -> Response:
    """Ends the session on the server too: a copy of the cookie opens nothing afterwards."""
    await checked_form(ctx)
    async with transaction(ctx.deps.sessions) as session:
        await console_sessions.end_session(session, ctx.session.nonce, service.now())
    response = RedirectResponse("/console/login", status_code=303)
    for path in (COOKIE_PATH, CODEC_COOKIE_PATH):
        response.delete_cookie(SESSION_COOKIE, path=path)
    return response


@router.get("/lang/{language}")
async def set_language(request: Request, language: str, next: str | None = None) -> Response:
    """Presentation only (no data changes), so a plain link may set it."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if language in LANGUAGES:
        set_cookie(
            response, request, console_state(request).settings, LANGUAGE_COOKIE, language, max_age=365 * 86400
        )
    return response
