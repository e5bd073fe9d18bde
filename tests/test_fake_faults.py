"""The fault knobs the chaos runs (`make chaos`) turn on the fakes: a Cal.com that makes a change but
answers late, its record of requests sent while a 429 still said wait, an SMTP server that takes its
time to answer, and a webhook receiver that is down and comes back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest

from channels.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from devstack.calcom_fake import FakeCalcom, RateLimitConfig, serve_fake
from devstack.harness import free_port
from devstack.sinks import MailSink, WebhookSink, serve_smtp_sink
from tests.calcom_fixtures import API_KEY, DAILY, NOW, sample_event_types

SLOTS = {"cal-api-version": "2024-09-04", "Authorization": f"Bearer {API_KEY}"}
BOOKINGS = {"cal-api-version": "2024-08-13"}
PARAMS = {"eventTypeId": str(DAILY), "start": "2030-03-30T00:00:00Z", "end": "2030-03-30T23:59:59Z"}


async def test_a_slow_answer_comes_after_the_change_was_made() -> None:
    fake = FakeCalcom(sample_event_types(), now=lambda: NOW)
    booking = fake.book(DAILY, datetime(2030, 3, 5, 9, tzinfo=UTC))
    fake.slow_down(1.0, path_suffix="/cancel")
    async with serve_fake(fake) as url, httpx.AsyncClient(base_url=url, headers=BOOKINGS) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"/v2/bookings/{booking.uid}/cancel", json={}, timeout=0.3)
        assert booking.status == "cancelled"  # made at once; only the answer was late
        again = await http.post(f"/v2/bookings/{booking.uid}/cancel", json={}, timeout=5)
    assert again.status_code == 400  # the rule was for one request only: answered at once
    assert [record.answer_delay for record in fake.requests] == [1.0, 0.0]


async def test_requests_sent_while_a_429_still_says_wait_are_counted() -> None:
    clock = [100.0]
    fake = FakeCalcom(
        sample_event_types(),
        now=lambda: NOW,
        monotonic=lambda: clock[0],
        rate_limit=RateLimitConfig(limit=1000, window_ms=60_000, block_ms=60_000),
    )
    async with serve_fake(fake) as url, httpx.AsyncClient(base_url=url, headers=SLOTS) as http:

        async def at(moment: float) -> int:
            clock[0] = moment
            return (await http.get("/v2/slots", params=PARAMS)).status_code

        fake.force_block(5)  # until 105
        assert await at(100.0) == 429
        assert await at(100.2) == 429  # already on its way when the first 429 came back (grace)
        assert await at(101.0) == 429  # sent although told to wait
        assert await at(106.0) == 200  # after the block
    assert fake.requests[0].quiet_until == 105.0
    assert [record.at for record in fake.ignored_waits(grace=0.5)] == [101.0]


async def test_a_slow_smtp_server_has_the_mail_before_it_answers() -> None:
    sink = MailSink(answer_delay=1.0)
    message = EmailMessage()
    message["From"], message["To"], message["Message-ID"] = "a@chaos.example", "b@chaos.example", "<m1@x>"
    message.set_content("hello")
    async with serve_smtp_sink(sink) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(aiosmtplib.SMTPTimeoutError):
            await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=0.3)
        assert sink.copies() == {"<m1@x>": 1}
        assert sink.answering == 1
        await asyncio.sleep(1.0)
        assert sink.answering == 0


async def test_the_webhook_sink_is_down_until_served_and_counts_signed_deliveries() -> None:
    sink = WebhookSink("secret-1")
    port = free_port()
    body = b'{"id":"e1"}'
    signed = {EVENT_ID_HEADER: "e1", SIGNATURE_HEADER: sign("secret-1", body)}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post("/hook", content=body, headers=signed)
        async with sink.serve(port):
            assert (await http.post("/hook", content=body, headers=signed)).status_code == 200
            forged = {EVENT_ID_HEADER: "e2", SIGNATURE_HEADER: sign("wrong", body)}
            assert (await http.post("/hook", content=body, headers=forged)).status_code == 401
        with pytest.raises(httpx.ConnectError):
            await http.post("/hook", content=body, headers=signed)
    assert sink.copies() == {"e1": 1}
    assert sink.received == [("e1", True), ("e2", False)]
