"""The console's signed tokens (itsdangerous): a session cookie, CSRF token, sign-in token and flash
message each verify only as what they were made for, only with our secret, and only while fresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from console.session import LOGIN_FORM_SECONDS, Signer

HOUR = 3600


def test_a_session_cookie_reads_back_and_nothing_else_does() -> None:
    signer = Signer(b"s" * 32, 8 * HOUR)
    cookie, opened = signer.issue(42)
    read = signer.read(cookie)
    assert read is not None
    assert (read.key_id, read.nonce) == (42, opened.nonce)
    assert abs(read.expires - opened.expires) <= 1
    # Tampered: the signature's last base64 character also holds padding bits that decoding drops (A and B
    # can decode alike), so change the one before it, all of whose bits count.
    assert signer.read(cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]) is None
    assert Signer(b"t" * 32, 8 * HOUR).read(cookie) is None  # another secret
    assert signer.read("äöü.x") is None
    assert signer.read("") is None
    assert signer.read(None) is None
    # A token of another purpose is no session, and a session is no CSRF token.
    assert signer.read(signer.csrf_token(opened)) is None
    assert not signer.csrf_ok(opened, cookie)
    assert signer.read(signer.flash([{"kind": "ok", "text": "hi"}])) is None


def test_a_session_expires_after_its_lifetime() -> None:
    signer = Signer(b"s" * 32, 8 * HOUR)
    cookie, _ = signer.issue(42)
    later = datetime.now(UTC)
    with time_machine.travel(later + timedelta(hours=7, minutes=59), tick=False):
        assert signer.read(cookie) is not None
    with time_machine.travel(later + timedelta(hours=8, minutes=1), tick=False):
        assert signer.read(cookie) is None


def test_csrf_tokens_belong_to_their_session() -> None:
    signer = Signer(b"s" * 32, 8 * HOUR)
    _, mine = signer.issue(1)
    _, theirs = signer.issue(1)
    token = signer.csrf_token(mine)
    assert signer.csrf_ok(mine, token)
    assert not signer.csrf_ok(theirs, token)
    assert not signer.csrf_ok(mine, None)
    assert not signer.csrf_ok(mine, "ä" + token[1:])


def test_the_sign_in_token_is_double_submitted_and_short_lived() -> None:
    signer = Signer(b"s" * 32, 8 * HOUR)
    token = signer.login_token()
    assert signer.login_ok(token, token)
    assert not signer.login_ok(token, signer.login_token())  # the field must repeat the cookie
    assert not signer.login_ok(None, token)
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=LOGIN_FORM_SECONDS + 5), tick=False):
        assert not signer.login_ok(token, token)


def test_flash_messages_survive_one_redirect_and_not_forgery() -> None:
    signer = Signer(b"s" * 32, 8 * HOUR)
    cookie = signer.flash([{"kind": "ok", "text": "Assign: 2 succeeded"}, "junk"])  # type: ignore[list-item]
    assert signer.read_flash(cookie) == [{"kind": "ok", "text": "Assign: 2 succeeded"}]
    assert Signer(b"t" * 32, 8 * HOUR).read_flash(cookie) == []
    assert signer.read_flash("x.y") == []
