"""A callback step's write in one statement: the row, the escalation, the audit events and the
notification outbox, prebuilt once; a step that got through also ends the callback's stuck mark, if any
(store/stuck.py: one a workflow could not clear itself, e.g. of a run terminated while stuck, goes too).

The step used to be three ORM-built statements in a transaction (BEGIN, upsert, escalation, events,
COMMIT), each compiled again per call. Now one data-modifying `WITH` statement does all of it: PostgreSQL
runs a single statement atomically, so outside a capacity claim (which must lock the staff row first,
store/callbacks.py `claim_capacity`) a step is one round trip on an autocommit connection. The values
travel as JSON documents (`jsonb_populate_record` / `jsonb_to_recordset` type them by the table's
columns), so the statement's text never changes and the driver reuses its prepared statement.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from models.callbacks import CallbackEvent, CallbackState, Escalation
from store.callbacks import row_values

KEPT_ON_UPDATE = ("id", "created_at")


@functools.cache
def _statement(columns: tuple[str, ...]) -> TextClause:
    """The write for a row of these columns (one set in practice: built once per process)."""
    names = ", ".join(columns)
    picked = ", ".join(f"(r).{column}" for column in columns)
    updated = ", ".join(
        f"{column} = COALESCE(EXCLUDED.{column}, callback_requests.{column})"
        if column == "workflow_id"
        else f"{column} = EXCLUDED.{column}"
        for column in columns
        if column not in KEPT_ON_UPDATE
    )
    return text(
        f"""
        WITH input AS (
            SELECT jsonb_populate_record(NULL::callback_requests, CAST(:row AS jsonb)) AS r
        ),
        written AS (
            INSERT INTO callback_requests ({names})
            SELECT {picked} FROM input
            ON CONFLICT (id) DO UPDATE SET {updated}, updated_at = now()
            WHERE callback_requests.version < EXCLUDED.version
            RETURNING id, company_id
        ),
        escalation AS (
            INSERT INTO callback_escalations (company_id, callback_request_id, sequence, escalation_reason,
                                              escalated_from, escalated_to, escalated_at, metadata)
            SELECT (i.r).company_id, (i.r).id, x.sequence, x.escalation_reason, x.escalated_from,
                   x.escalated_to, x.escalated_at, x.metadata
              FROM input AS i,
                   jsonb_to_recordset(CAST(:escalations AS jsonb)) AS x(
                       sequence int, escalation_reason text, escalated_from uuid, escalated_to uuid,
                       escalated_at timestamptz, metadata jsonb)
            ON CONFLICT (callback_request_id, sequence) DO NOTHING
        ),
        events AS (
            INSERT INTO callback_events (company_id, callback_request_id, seq, type, payload, actor,
                                         occurred_at)
            SELECT (i.r).company_id, (i.r).id, e.seq, e.type, e.payload, e.actor, e.occurred_at
              FROM input AS i,
                   jsonb_to_recordset(CAST(:events AS jsonb)) AS e(
                       seq int, type text, payload jsonb, actor text, occurred_at timestamptz)
            ON CONFLICT (callback_request_id, seq) DO NOTHING
        ),
        outbox AS (
            INSERT INTO notification_outbox (company_id, callback_request_id, seq, workflow_id, event)
            SELECT w.company_id, w.id, o.seq, o.workflow_id, o.event
              FROM written AS w,
                   jsonb_to_recordset(CAST(:outbox AS jsonb)) AS o(seq int, workflow_id text, event jsonb)
            ON CONFLICT (workflow_id) DO NOTHING
        ),
        unstuck AS (
            DELETE FROM callback_stuck AS s USING input AS i WHERE s.callback_id = (i.r).id
        )
        SELECT count(*) AS written FROM written
        """
    ).bindparams(
        bindparam("row", type_=JSONB()),
        bindparam("escalations", type_=JSONB()),
        bindparam("events", type_=JSONB()),
        bindparam("outbox", type_=JSONB()),
    )


def _row(state: CallbackState, workflow_id: str | None) -> dict[str, Any]:
    values = {("metadata" if key == "metadata_" else key): value for key, value in row_values(state).items()}
    values["workflow_id"] = workflow_id
    return values


def _escalations(state: CallbackState, escalation: Escalation | None) -> list[dict[str, Any]]:
    if escalation is None:
        return []
    return [
        {
            "sequence": escalation.number,
            "escalation_reason": escalation.reason.value,
            "escalated_from": escalation.escalated_from,
            "escalated_to": escalation.escalated_to,
            "escalated_at": escalation.at,
            "metadata": {"details": escalation.details} if escalation.details else None,
        }
    ]


def _events(events: Sequence[CallbackEvent]) -> list[dict[str, Any]]:
    return [
        {"seq": e.seq, "type": e.type, "payload": e.payload, "actor": e.actor, "occurred_at": e.at}
        for e in events
    ]


async def write_step(
    connection: AsyncSession | AsyncConnection,
    state: CallbackState,
    *,
    workflow_id: str | None,
    escalation: Escalation | None,
    events: Sequence[CallbackEvent],
    outbox: Sequence[dict[str, Any]] = (),
) -> bool:
    """Write the step unless a newer version of the row is there (its escalation and events are
    idempotent by their sequence numbers). Returns whether the row was written; the outbox rows are
    written only then (a retried write finds them written, or already drained)."""
    row = _row(state, workflow_id)
    result = await connection.execute(
        _statement(tuple(row)),
        {
            "row": to_jsonable_python(row),
            "escalations": to_jsonable_python(_escalations(state, escalation)),
            "events": to_jsonable_python(_events(events)),
            "outbox": list(outbox),
        },
    )
    return bool(result.scalar_one())
