"""Outgoing webhooks follow Standard Webhooks: a receiver that knows only the secret and an off-the-shelf
library (`standardwebhooks`) verifies a real delivery of our channel, and refuses the same delivery replayed
ten minutes later. The deprecated `X-Signature-256` still verifies for one release."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.webhook import (
    SIGNATURE_HEADER,
    new_secret,
    send_webhook,
    signing_key,
    standard_secret,
    verify,
)
from models.notifications import (
    Channel,
    NotificationSubject,
    NotifyEvent,
    PlannedDelivery,
    Recipient,
    RecipientType,
)
from telemetry.asgi_server import serve_asgi

# A secret as they were generated before Standard Webhooks: `whsec_` + url-safe text, not base64.
LEGACY_SECRET = "whsec_-ZBt58bW_legacy-0123456789abcdefghijklmnopq"
NEW_SECRET = new_secret()


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


@dataclass
class StandardReceiver:
    """A receiver as its authors would write it from the Standard Webhooks docs: only the library."""

    secret: str
    deliveries: list[Delivery] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        self.deliveries.append(Delivery(body, headers))
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as refused:
            return JSONResponse({"error": str(refused)}, status_code=401)
        return JSONResponse({"ok": True})


def _planned(url: str) -> PlannedDelivery:
    return PlannedDelivery(
        event=NotifyEvent(
            event_id="callback:c1:7",
            type="callback.escalated",
            occurred_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
            payload={"number": 1, "reason": "sla_breach"},
            subject=NotificationSubject(type="callback", id="c1", company_id=1),
        ),
        recipient=Recipient(type=RecipientType.WEBHOOK, id="1", webhook_url=url),
        channel=Channel.WEBHOOK,
        address=url,
        retry_count=3,
        retry_delay_minutes=5,
    )


@pytest.mark.parametrize(
    ("stored", "receiver_secret"),
    [
        pytest.param(NEW_SECRET, NEW_SECRET, id="new secret, given to the receiver as it is"),
        pytest.param(LEGACY_SECRET, standard_secret(LEGACY_SECRET), id="secret made before the standard"),
    ],
)
async def test_a_standard_webhooks_receiver_verifies_a_delivery_and_refuses_its_replay(
    stored: str, receiver_secret: str
) -> None:
    receiver = StandardReceiver(receiver_secret)
    async with serve_asgi(receiver.app()) as base:
        status = await send_webhook(_planned(f"{base}/hook"), secret=stored, sent_at=datetime.now(UTC))
    assert status == 200  # the receiver's library accepted it (it answers 401 otherwise)
    [delivery] = receiver.deliveries
    headers = delivery.headers
    assert headers["webhook-id"] == str(_planned("x").message_id)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(receiver_secret).verify(delivery.body, headers)["type"] == "callback.escalated"

    # The same delivery, replayed ten minutes later: the library's 5-minute tolerance refuses it.
    later = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC) + timedelta(minutes=10)
    with time_machine.travel(later, tick=False), pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(receiver_secret).verify(delivery.body, headers)

    # A changed body, or another secret, is refused too.
    with pytest.raises(WebhookVerificationError):
        Webhook(receiver_secret).verify(delivery.body.replace(b"sla_breach", b"nothing"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(delivery.body, headers)

    # Deprecated for one release: the hex HMAC of the body with the stored secret.
    assert verify(stored, delivery.body, headers[SIGNATURE_HEADER.lower()])


def test_secrets_are_standard_webhooks_secrets_and_old_ones_keep_their_key() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert standard_secret(secret) == secret  # a receiver is given the secret as it is
    # An old secret signs with its own bytes (as X-Signature-256 always did); its standard form carries them.
    assert signing_key(LEGACY_SECRET) == LEGACY_SECRET.encode()
    assert base64.b64decode(standard_secret(LEGACY_SECRET).removeprefix("whsec_")) == LEGACY_SECRET.encode()
