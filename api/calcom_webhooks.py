"""POST /v1/calcom/webhooks/{company_id}: Cal.com's booking webhooks, one subscriber URL per company.

No API key: the call is authenticated by its signature. `X-Cal-Signature-256` must be the hex HMAC-SHA256
of the raw body with the company's Cal.com webhook secret (`companies.calcom_webhook_secret`), compared in
constant time; anything else (no secret configured, unknown company, wrong or missing header) is a 401 and
writes nothing. A verified delivery is applied by store/calcom_bookings.py and answered 200 at once with
what it came to (`created`, `updated`, `unchanged`, `ignored`, `duplicate`): Cal.com retries non-2xx
answers, which would only repeat a decision already taken.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel

from api.deps import Deps, get_deps
from api.params import MAX_ID
from api.problems import ApiProblem
from rules.calcom_webhooks import (
    SIGNATURE_HEADER,
    IgnoredTrigger,
    UnreadableWebhook,
    parse_webhook,
    signature_valid,
)
from store import calcom_bookings
from store.db import transaction
from telemetry import logs as log_context
from telemetry import metrics

router = APIRouter(prefix="/v1/calcom", tags=["cal.com"])

DepsDep = Annotated[Deps, Depends(get_deps)]


class WebhookAnswer(BaseModel):
    trigger: str
    outcome: str
    detail: str
    booking_uid: str | None = None
    appointment_id: int | None = None
    modification_id: int | None = None


@router.post(
    "/webhooks/{company_id}",
    response_model=WebhookAnswer,
    summary="Receive a Cal.com webhook (signed with the company's Cal.com webhook secret)",
    responses={401: {"description": "missing or wrong X-Cal-Signature-256; nothing was written"}},
)
async def receive(
    company_id: Annotated[int, Path(gt=0, le=MAX_ID)], request: Request, deps: DepsDep
) -> WebhookAnswer:
    """Configure in Cal.com (Settings → Developer → Webhooks) the subscriber URL
    `<api>/v1/calcom/webhooks/<company id>` with the company's Cal.com webhook secret, and the triggers
    BOOKING_CREATED, BOOKING_REQUESTED, BOOKING_RESCHEDULED, BOOKING_CANCELLED, BOOKING_REJECTED,
    BOOKING_PAID, BOOKING_PAYMENT_INITIATED, MEETING_ENDED and BOOKING_NO_SHOW_UPDATED."""
    body = await request.body()
    async with deps.sessions() as session:
        secret = await calcom_bookings.calcom_webhook_secret(session, company_id)
    if not signature_valid(secret, body, request.headers.get(SIGNATURE_HEADER)):
        metrics.CALCOM_WEBHOOKS.labels("unknown", "refused").inc()
        raise ApiProblem(
            401,
            f"{SIGNATURE_HEADER} is missing or does not match this company's Cal.com webhook secret",
            slug="bad-signature",
        )
    log_context.bind(company_id=company_id)
    received_at = datetime.now(UTC)
    try:
        parsed = parse_webhook(body, received_at)
    except UnreadableWebhook as exc:
        raise ApiProblem(400, str(exc), slug="unreadable-webhook") from None
    if isinstance(parsed, IgnoredTrigger):
        metrics.CALCOM_WEBHOOKS.labels("other", "ignored").inc()
        return WebhookAnswer(
            trigger=parsed.trigger, outcome="ignored", detail="this trigger does not change a booking"
        )
    event_at = parsed.occurred_at if parsed.occurred_at != received_at else None
    async with transaction(deps.sessions) as session:
        applied = await calcom_bookings.receive_webhook(
            session, company_id, parsed, event_at, resolver=deps.policies
        )
    metrics.CALCOM_WEBHOOKS.labels(parsed.change.value, applied.outcome.value).inc()
    return WebhookAnswer(
        trigger=parsed.trigger,
        outcome=applied.outcome.value,
        detail=applied.detail,
        booking_uid=parsed.uid,
        appointment_id=applied.appointment_id,
        modification_id=applied.modification_id,
    )
