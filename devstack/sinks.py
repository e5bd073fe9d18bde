"""Local stand-ins for the outside world of notifications: an SMTP sink, a fake SMS gateway and a
webhook receiver.

`make dev` runs both so that every notification really goes over the wire and can be read afterwards:
mails land as `.eml` files in `.local/mail/`, text messages as JSON lines in `.local/sms.jsonl` (and at
`GET /messages` of the gateway). The tests use the same SMTP sink on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from devstack.calcom_fake import FakeCalcom, serve_fake
from telemetry.asgi_server import serve_asgi


class MailSink:
    """An aiosmtpd handler that keeps every mail (and writes it to `folder` when given).

    `answer_delay`: seconds between taking a mail in and answering 250 (a slow server: the mail is
    already here when the sender still waits for the answer); `answering` counts mails waiting for it."""

    def __init__(self, folder: Path | None = None, *, answer_delay: float = 0.0) -> None:
        self.folder = folder
        self.answer_delay = answer_delay
        self.answering = 0
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.received = asyncio.Event()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), [str(rcpt) for rcpt in envelope.rcpt_tos]))
        if self.folder is not None:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{len(self.messages):05d}.eml"
            (self.folder / name).write_bytes(raw)
        self.received.set()
        if self.answer_delay:
            self.answering += 1
            try:
                await asyncio.sleep(self.answer_delay)
            finally:
                self.answering -= 1
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]

    def copies(self) -> Counter[str]:
        """How often each Message-ID arrived (a notification is one Message-ID)."""
        return Counter(str(message["Message-ID"]) for message in self.messages)


class WebhookSink:
    """A webhook receiver that counts deliveries per `X-Event-Id` and checks their signatures; it can be
    taken down (connections refused) and brought up again on the same port (`serve`)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[tuple[str, bool]] = []  # (X-Event-Id, signature valid)
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        valid = verify(self.secret, body, request.headers.get(SIGNATURE_HEADER, ""))
        self.received.append((request.headers.get(EVENT_ID_HEADER, ""), valid))
        if not valid:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        return JSONResponse({"status": "received"})

    def copies(self) -> Counter[str]:
        return Counter(event_id for event_id, valid in self.received if valid)

    def serve(self, port: int) -> contextlib.AbstractAsyncContextManager[str]:
        """Listen on `port` until the block ends (down again afterwards)."""
        return serve_asgi(self.app, "127.0.0.1", port)


@contextlib.asynccontextmanager
async def serve_smtp_sink(sink: MailSink, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run the SMTP sink in this event loop; yields its `smtp://host:port` URL."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink, hostname="callbacks.local"), host=host, port=port)
    bound = server.sockets[0].getsockname()[1]
    try:
        yield f"smtp://{host}:{bound}"
    finally:
        server.close()
        await server.wait_closed()


class FakeSmsGateway:
    """Accepts `POST /messages {to, text, message_id}`, drops repeats of a message_id, lists them at
    `GET /messages`, and appends each to `log` (JSON lines) when given."""

    def __init__(self, log: Path | None = None) -> None:
        self.log = log
        self.messages: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/messages", self._messages, methods=["GET", "POST"])])

    async def _messages(self, request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse({"messages": self.messages})
        body = await request.json()
        if not isinstance(body, dict) or not body.get("to") or not body.get("text"):
            return JSONResponse({"error": "to and text are required"}, status_code=400)
        if any(message.get("message_id") == body.get("message_id") for message in self.messages):
            return JSONResponse({"status": "duplicate"}, status_code=200)
        self.messages.append(body)
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("a", encoding="utf-8") as out:
                out.write(json.dumps(body, ensure_ascii=False) + "\n")
        return JSONResponse({"status": "queued"}, status_code=202)


async def serve_all(host: str, calcom_port: int, smtp_port: int, sms_port: int, folder: Path) -> None:
    """The dev profile of docker-compose.yml: the fake Cal.com, the SMTP sink and the fake SMS gateway in
    one process, until it is stopped."""
    async with (
        serve_fake(FakeCalcom(), host, calcom_port) as calcom,
        serve_smtp_sink(MailSink(folder / "mail"), host, smtp_port) as smtp,
        serve_asgi(FakeSmsGateway(folder / "sms.jsonl").app, host, sms_port) as sms,
    ):
        print(f"fake Cal.com {calcom}, SMTP sink {smtp}, SMS gateway {sms}/messages", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Cal.com, SMTP sink, fake SMS gateway.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--calcom-port", type=int, default=8788)
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--sms-port", type=int, default=8790)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/callbacks-sinks"))
    args = parser.parse_args(argv)
    asyncio.run(serve_all(args.host, args.calcom_port, args.smtp_port, args.sms_port, args.folder))


if __name__ == "__main__":
    main()
