"""The notification outbox (models/tables/outbox.py): written with a callback step, drained by the
worker's dispatcher (activities/notification_outbox.py).

Rows carry the event without the customer's contact data and without its payload; a claim reads them from
the callback's row and its event row, which an erasure blanks and scrubs: a message planned after an erasure
has nobody's data to use. A claim leases its rows for a while instead of
deleting them: a dispatcher that dies before starting the runs leaves them to the next claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import BigInteger, Float, Integer

from models.callbacks import ERASED
from models.notifications import NotifyEvent

# What a row keeps of the subject's customer: nothing that identifies them.
CONTACT_FIELDS = ("customer_name", "customer_phone", "customer_email")

CLAIM = text(
    """
    UPDATE notification_outbox AS o
       SET available_at = now() + make_interval(secs => :lease), attempts = o.attempts + 1
      FROM callback_requests AS c, callback_events AS e
     WHERE o.id IN (
               SELECT id FROM notification_outbox
                WHERE available_at <= now()
                ORDER BY id
                LIMIT :limit
                  FOR UPDATE SKIP LOCKED
           )
       AND c.id = o.callback_request_id
       AND e.callback_request_id = o.callback_request_id AND e.seq = o.seq
    RETURNING o.id, o.workflow_id, o.event, e.payload, c.customer_name, c.phone_number, c.email
    """
).bindparams(bindparam("lease", type_=Float()), bindparam("limit", type_=Integer()))

DONE = text("DELETE FROM notification_outbox WHERE id = ANY(:ids)").bindparams(
    bindparam("ids", type_=ARRAY(BigInteger()))
)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    workflow_id: str
    event: NotifyEvent


def outbox_event(event: NotifyEvent) -> dict[str, Any]:
    """The event as a row keeps it: JSON, the customer's contact data and the payload left out."""
    subject = event.subject.model_copy(update=dict.fromkeys(CONTACT_FIELDS))
    return event.model_copy(update={"subject": subject, "payload": {}}).model_dump(mode="json")


def outbox_rows(starts: Sequence[tuple[str, int, NotifyEvent]]) -> list[dict[str, Any]]:
    """(workflow id, event seq, event) as rows for the transition's write (store/callback_writes.py)."""
    return [
        {"workflow_id": workflow_id, "seq": seq, "event": outbox_event(event)}
        for workflow_id, seq, event in starts
    ]


def _clear(value: str | None) -> str | None:
    return None if value == ERASED else value


async def claim(session: AsyncSession, *, limit: int, lease_seconds: float) -> list[OutboxItem]:
    """Up to `limit` rows due now, oldest first, leased for `lease_seconds` (rows another dispatcher holds
    are skipped), each with the customer's current contact data."""
    rows = await session.execute(CLAIM, {"lease": lease_seconds, "limit": limit})
    items = []
    for row in rows:
        event = NotifyEvent.model_validate(row.event)
        contact = {
            "customer_name": _clear(row.customer_name),
            "customer_phone": _clear(row.phone_number),
            "customer_email": _clear(row.email),
        }
        subject = event.subject.model_copy(update=contact)
        told = event.model_copy(update={"subject": subject, "payload": dict(row.payload or {})})
        items.append(OutboxItem(row.id, row.workflow_id, told))
    return items


async def done(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(DONE, {"ids": list(ids)})


PENDING = text(
    "SELECT count(*) FROM notification_outbox WHERE CAST(:company AS bigint) IS NULL OR company_id = :company"
).bindparams(bindparam("company", type_=BigInteger()))


async def pending(session: AsyncSession, company_id: int | None = None) -> int:
    """Rows not yet drained (of one company, or all)."""
    return int(await session.scalar(PENDING, {"company": company_id}) or 0)
