"""SMS through an HTTP gateway: POST {to, text, message_id} as JSON to the configured URL.

`message_id` is stable per (event, recipient, channel), so a gateway that deduplicates on it sends a
retried message once. Like webhooks, only 5xx, timeouts and transport errors are retried.
"""

from __future__ import annotations

import asyncio

import httpx

from channels.errors import DeliveryError, http_deadline
from channels.templates import render_sms
from models.notifications import PlannedDelivery


async def send_sms(
    planned: PlannedDelivery,
    *,
    gateway_url: str,
    timeout_seconds: float = 10.0,
    summary: str | None = None,
) -> None:
    """`summary`: the tenant's override, already rendered in the sandbox (channels/templates.py)."""
    text = render_sms(planned, summary)
    payload = {"to": planned.address, "text": text, "message_id": str(planned.message_id)}
    try:
        async with (
            asyncio.timeout(http_deadline(timeout_seconds)),
            httpx.AsyncClient(timeout=timeout_seconds) as client,
        ):
            response = await client.post(gateway_url, json=payload)
    except (httpx.TimeoutException, TimeoutError):
        raise DeliveryError(f"SMS gateway: no answer within {timeout_seconds:g} s", retryable=True) from None
    except httpx.TransportError as error:
        raise DeliveryError(f"SMS gateway unreachable: {type(error).__name__}", retryable=True) from None
    if not response.is_success:
        raise DeliveryError(
            f"SMS gateway answered {response.status_code}",
            retryable=response.status_code >= 500,
            detail=response.text[:200],
        )
