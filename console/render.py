"""How every console answer is sent: the template with its common values, strict security headers, cookies
scoped to /console, and one-shot flash messages that survive the redirect after a post."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from config import Settings
from console.context import Ctx, console_state, language_of
from console.i18n import LANGUAGES, translator
from console.session import COOKIE_PATH, FLASH_SECONDS, Signer

FLASH_COOKIE = "cbc_flash"
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


def render(
    ctx: Ctx | None, request: Request, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    state = console_state(request)
    language = ctx.language if ctx else language_of(request)
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
        "flash": read_flash(request, state.signer),
    }
    html = state.templates.get_template(template).render(**base, **values)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if base["flash"]:
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
    return response


def not_found(ctx: Ctx, text: str = "") -> HTMLResponse:
    return render(ctx, ctx.request, "error.html", 404, title=ctx.t("error.not_found"), text=text)


def set_cookie(
    response: Response,
    request: Request,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = COOKIE_PATH,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="lax",
        secure=settings.console_cookie_secure or request.url.scheme == "https",
    )


def set_flash(response: Response, signer: Signer, messages: list[dict[str, str]]) -> None:
    response.set_cookie(
        FLASH_COOKIE,
        signer.flash(messages),
        max_age=FLASH_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
    )


def read_flash(request: Request, signer: Signer) -> list[dict[str, str]]:
    return signer.read_flash(request.cookies.get(FLASH_COOKIE))


def validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
