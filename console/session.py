"""Console sessions, CSRF tokens, the sign-in form's token and flash messages: all signed and dated with
itsdangerous' `URLSafeTimedSerializer`, one salt per purpose, so no token of one kind passes for another.

The session cookie never carries the API key itself, only its id and a random nonce, signed and
timestamped, so a stolen cookie is worth one session and not a long-lived credential; it expires
`console_session_hours` after sign-in. The key is re-read on every request: revoking it (`callbacks keys
revoke`) ends its console sessions at once. The nonce is also the session's id on the server
(`console_sessions`, store/console_sessions.py): signing out deletes that row, so the session ends
everywhere, not only in the browser that dropped its cookie.

CSRF: every session has tokens that sign its nonce (nothing stored server-side); every POST must carry one
as a form field or an `X-CSRF-Token` header. The sign-in form, which has no session yet, uses the
double-submit pattern with a short-lived pre-session cookie. SameSite=Lax on top keeps other sites' forms
from even sending the cookie; the token is what guards against the rest.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

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
FLASH_SECONDS = 60
# Far more than any token of ours; longer text is refused before any work is done on it.
MAX_TOKEN_LENGTH = 1024


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
    """Issues and reads everything the console signs, with one secret and one session lifetime."""

    def __init__(self, secret: bytes, session_seconds: float) -> None:
        self.session_seconds = int(session_seconds)
        self._serializers = {
            purpose: URLSafeTimedSerializer(secret, salt=f"cbc-{purpose}")
            for purpose in ("session", "csrf", "login", "flash")
        }

    def _dump(self, purpose: str, value: Any) -> str:
        return self._serializers[purpose].dumps(value)

    def _load(self, purpose: str, token: str | None, max_age: int) -> tuple[Any, int] | None:
        """The value and signing time of a token of ours for `purpose`, not older than `max_age`."""
        if not token or not token.isascii() or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            value, signed_at = self._serializers[purpose].loads(token, max_age=max_age, return_timestamp=True)
        except BadData:
            return None
        return value, int(signed_at.timestamp())

    # --- sessions ------------------------------------------------------------------------------

    def issue(self, key_id: int) -> tuple[str, ConsoleSession]:
        session = ConsoleSession(key_id, int(time.time()) + self.session_seconds, secrets.token_urlsafe(16))
        return self._dump("session", {"k": session.key_id, "n": session.nonce}), session

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session of a cookie this process signed and that has not expired; None for anything else."""
        loaded = self._load("session", cookie, self.session_seconds)
        if loaded is None:
            return None
        data, signed_at = loaded
        try:
            return ConsoleSession(int(data["k"]), signed_at + self.session_seconds, str(data["n"]))
        except (ValueError, KeyError, TypeError):
            return None

    # --- CSRF ----------------------------------------------------------------------------------

    def csrf_token(self, session: ConsoleSession) -> str:
        return self._dump("csrf", session.nonce)

    def csrf_ok(self, session: ConsoleSession, token: str | None) -> bool:
        loaded = self._load("csrf", token, self.session_seconds)
        return loaded is not None and isinstance(loaded[0], str) and _same(loaded[0], session.nonce)

    def login_token(self) -> str:
        """A fresh token for the sign-in form: sent both as a cookie and as a hidden field."""
        return self._dump("login", secrets.token_urlsafe(16))

    def login_ok(self, cookie: str | None, field: str | None) -> bool:
        if not cookie or not _same(field, cookie):
            return False
        return self._load("login", cookie, LOGIN_FORM_SECONDS) is not None

    # --- flash messages ------------------------------------------------------------------------

    def flash(self, messages: list[dict[str, str]]) -> str:
        return self._dump("flash", messages[:8])

    def read_flash(self, cookie: str | None) -> list[dict[str, str]]:
        loaded = self._load("flash", cookie, FLASH_SECONDS)
        if loaded is None or not isinstance(loaded[0], list):
            return []
        return [m for m in loaded[0] if isinstance(m, dict)]
