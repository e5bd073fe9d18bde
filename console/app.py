"""Mounting the console on the API app: its pages, static files, templates and the two refusals every page
can end in (no session → the sign-in page, no CSRF proof → 403)."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.staticfiles import StaticFiles

from api.codec_server import SESSION_READER
from config import Settings
from console import (
    admin,
    admin_branches,
    admin_companies,
    admin_customers,
    admin_services,
    admin_staff,
    auth,
    dashboard,
    detail,
    new,
    queue,
)
from console.badge import PendingBadge
from console.context import ConsoleState, CsrfRefused, SignInRequired, language_of, session_principal
from console.i18n import translator
from console.render import render
from console.session import Signer

HERE = Path(__file__).parent


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
        settings,
        Signer(secret, settings.console_session_hours * 3600),
        templates,
        PendingBadge(settings.console_badge_ttl_seconds),
    )
    # `new` before `detail`: /console/callbacks/new must not be read as a callback id.
    for page in (auth, queue, new, detail, dashboard):
        app.include_router(page.router)
    # The admin section (admin and super_admin keys): the directory's resource pages.
    app.include_router(admin.home_router)
    for resource in (admin_branches, admin_services, admin_staff, admin_customers, admin_companies):
        app.include_router(resource.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    # The Temporal UI's codec requests carry the console's sign-in (api/codec_server.py).
    setattr(app.state, SESSION_READER, session_principal)
    app.add_exception_handler(SignInRequired, _sign_in_redirect)
    app.add_exception_handler(CsrfRefused, _csrf_refused)


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
    t = translator(language_of(request))
    return render(None, request, "error.html", 403, title="403", text=t("error.csrf"))
