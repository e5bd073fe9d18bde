"""Signed webhooks: POST JSON to the company's URL, signed the Standard Webhooks way.

Every delivery carries `webhook-id` (the message id, stable per (event, recipient, channel) across
retries), `webhook-timestamp` (the send time, Unix seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), made with the `standardwebhooks` package, so a receiver
verifies with any off-the-shelf Standard Webhooks library and its 5-minute tolerance refuses replays.

The key is the company's current secret (after a rotation, `POST /v1/companies/{id}/webhook-secret`, the
previous one is only kept for receivers that still verify with it during the grace period; nothing is
signed with it any more). Secrets made since Standard Webhooks are `whsec_<base64 of 24 random bytes>`, as
the standard has them, and a receiver passes them as they are. Older secrets (`whsec_` + url-safe text)
are not base64: their key is the secret's own UTF-8 bytes, and their Standard Webhooks form is
`whsec_` + base64 of those bytes (`standard_secret`), so a receiver keeps the secret it has.

Deprecated, kept for one release: `X-Signature-256` (hex HMAC-SHA256 of the raw body with the secret's UTF-8
bytes), `X-Webhook-Timestamp` and `X-Event-Id` (docs/api.md).
Only 5xx answers, timeouts and transport errors are worth another try; any other answer is final.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from channels.errors import DeliveryError, http_deadline
from models.notifications import PlannedDelivery

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
# Deprecated (one release): the signature and headers of before Standard Webhooks.
SIGNATURE_HEADER = "X-Signature-256"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
EVENT_ID_HEADER = "X-Event-Id"
USER_AGENT = "callback-engine-webhooks/1"


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 24 random bytes (the key)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a stored secret: the decoded base64 of a Standard Webhooks secret, else (a secret
    made before them, url-safe text that is not valid base64) the secret's UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode()


def standard_secret(secret: str) -> str:
    """The `whsec_…` form a Standard Webhooks receiver is configured with for a stored secret."""
    return SECRET_PREFIX + base64.b64encode(signing_key(secret)).decode("ascii")


def sign(secret: str, body: bytes) -> str:
    """The deprecated `X-Signature-256`: hex HMAC-SHA256 of the raw body with the secret's UTF-8 bytes."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def standard_headers(secret: str, message_id: str, sent_at: datetime, body: bytes) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` of one delivery."""
    # The library reads the timestamp's wall time as UTC, so it gets UTC.
    signature = Webhook(signing_key(secret)).sign(message_id, sent_at.astimezone(UTC), body.decode())
    return {
        ID_HEADER: message_id,
        STANDARD_TIMESTAMP_HEADER: str(int(sent_at.timestamp())),
        STANDARD_SIGNATURE_HEADER: signature,
    }


def webhook_body(planned: PlannedDelivery, sent_at: datetime) -> dict[str, Any]:
    event = planned.event
    return {
        "id": str(planned.message_id),
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "timestamp": int(sent_at.timestamp()),
        "actor": event.actor,
        "company_id": event.subject.company_id,
        "subject": event.subject.model_dump(mode="json"),
        "data": event.payload,
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


async def send_webhook(
    planned: PlannedDelivery, *, secret: str, sent_at: datetime, timeout_seconds: float = 10.0
) -> int:
    """POST the event; returns the status code of a 2xx answer."""
    body = webhook_body(planned, sent_at)
    raw = encode(body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **standard_headers(secret, str(planned.message_id), sent_at, raw),
        SIGNATURE_HEADER: sign(secret, raw),
        TIMESTAMP_HEADER: str(body["timestamp"]),
        EVENT_ID_HEADER: str(planned.message_id),
        "X-Event-Type": planned.event.type,
    }
    try:
        async with (
            asyncio.timeout(http_deadline(timeout_seconds)),
            httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False) as client,
        ):
            response = await client.post(planned.address, content=raw, headers=headers)
    except (httpx.TimeoutException, TimeoutError):
        raise DeliveryError(f"no answer within {timeout_seconds:g} s", retryable=True) from None
    except httpx.TransportError as error:
        raise DeliveryError(f"webhook unreachable: {error!r}", retryable=True) from None
    if response.is_success:
        return response.status_code
    raise DeliveryError(
        f"webhook answered {response.status_code}",
        retryable=response.status_code >= 500,
        detail=response.text[:200],
    )
