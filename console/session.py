"""Console sessions: a signed cookie that names the API key it was opened with, and CSRF tokens.

The cookie never carries the API key itself, only its id, an expiry and a random nonce, signed with
HMAC-SHA256, so a stolen cookie is worth one session and not a long-lived credential. The key is re-read
on every request: revoking it (`callbacks keys revoke`) ends its console sessions at once. The nonce is also
the session's id on the server (`console_sessions`, store/console_sessions.py): signing out deletes that row,
so the session ends everywhere, not only in the browser that dropped its cookie.

CSRF: every session has a token derived from its nonce (HMAC again, so nothing is stored server-side);
every POST must carry it as a form field or an `X-CSRF-Token` header. The sign-in form, which has no
session yet, uses the double-submit pattern with a short-lived pre-session cookie. SameSite=Lax on top
keeps other sites' forms from even sending the cookie; the token is what guards against the rest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "cbc_session"
LOGIN_COOKIE = "cbc_login"
LANGUAGE_COOKIE = "cbc_lang"
COOKIE_PATH = "/console"
# The same session is also sent to the codec server (api/codec_server.py), so the Temporal UI decodes
# payloads for whoever signed in to the console (its codec setting "include cross-origin credentials").
CODEC_COOKIE_PATH = "/codec"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
LOGIN_FORM_SECONDS = 30 * 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of text a client sent (any characters at all: `hmac.compare_digest`
    refuses non-ASCII `str` with a TypeError, which would answer 500) with text we made."""
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


@dataclass(frozen=True)
class ConsoleSession:
    key_id: int
    expires: int
    nonce: str


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, purpose: str, payload: str) -> str:
        return _b64(hmac.new(self._secret, f"{purpose}:{payload}".encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, payload: str) -> str:
        return self._mac(purpose, payload)

    def verify(self, purpose: str, payload: str, mac: str) -> bool:
        return _same(mac, self._mac(purpose, payload))

    def issue(self, key_id: int, lifetime_seconds: float) -> tuple[str, ConsoleSession]:
        session = ConsoleSession(key_id, int(time.time() + lifetime_seconds), secrets.token_urlsafe(16))
        payload = _b64(json.dumps({"k": session.key_id, "e": session.expires, "n": session.nonce}).encode())
        return f"{payload}.{self._mac('session', payload)}", session

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session of a cookie this process signed and that has not expired; None for anything else."""
        if not cookie or not cookie.isascii() or cookie.count(".") != 1 or len(cookie) > 512:
            return None
        payload, mac = cookie.split(".")
        if not _same(mac, self._mac("session", payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = ConsoleSession(int(data["k"]), int(data["e"]), str(data["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= time.time():
            return None
        return session

    def csrf_token(self, session: ConsoleSession) -> str:
        return self._mac("csrf", session.nonce)

    def csrf_ok(self, session: ConsoleSession, token: str | None) -> bool:
        return bool(token) and _same(token, self.csrf_token(session))

    def login_token(self) -> str:
        """A fresh token for the sign-in form: sent both as a cookie and as a hidden field."""
        nonce = f"{int(time.time())}-{secrets.token_urlsafe(16)}"
        return f"{nonce}.{self._mac('login', nonce)}"

    def login_ok(self, cookie: str | None, field: str | None) -> bool:
        if not cookie or not field or not cookie.isascii() or not _same(field, cookie):
            return False
        if cookie.count(".") != 1:
            return False
        nonce, mac = cookie.split(".")
        if not _same(mac, self._mac("login", nonce)):
            return False
        issued = nonce.split("-", 1)[0]
        return issued.isdigit() and time.time() - int(issued) < LOGIN_FORM_SECONDS
