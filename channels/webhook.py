"""Signed webhooks: POST JSON to the company's URL.

`X-Signature-256` is the hex HMAC-SHA256 of the raw body with the company's current secret (after a
rotation, `POST /v1/companies/{id}/webhook-secret`, the previous one is only kept for receivers that still
verify with it during the grace period; nothing is signed with it any more). The body carries the
send time (`timestamp`, also in the `X-Webhook-Timestamp` header), so the signature covers it and a
receiver can refuse old replays. `X-Event-Id` is stable per (event, recipient, channel) across retries.
Only 5xx answers, timeouts and transport errors are worth another try; any other answer is final.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx

from channels.errors import DeliveryError, http_deadline
from models.notifications import PlannedDelivery

SIGNATURE_HEADER = "X-Signature-256"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
EVENT_ID_HEADER = "X-Event-Id"
USER_AGENT = "callback-engine-webhooks/1"


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


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
