"""The stuck marks of callbacks (models/tables/stuck.py): written by their workflow, read by the API and
the console (the `callbacks_stuck_workflows` gauge counts them in store/callback_gauges.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.stuck import StuckMark
from models.tables import CallbackStuckRow


async def mark(session: AsyncSession, stuck: StuckMark, workflow_id: str | None) -> None:
    """Write the callback's mark, or bring it up to date (rounds, last failure, given up)."""
    values: dict[str, Any] = {
        "company_id": stuck.company_id,
        "workflow_id": workflow_id,
        "step": stuck.step.value,
        "since": stuck.since,
        "failed_rounds": stuck.failed_rounds,
        "error": stuck.error,
        "gave_up_at": stuck.gave_up_at,
        "updated_at": func.now(),
    }
    statement = insert(CallbackStuckRow).values(callback_id=stuck.callback_id, **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=[CallbackStuckRow.callback_id], set_=values)
    )


async def clear(session: AsyncSession, callback_id: UUID) -> None:
    await session.execute(delete(CallbackStuckRow).where(CallbackStuckRow.callback_id == callback_id))


def as_dict(row: CallbackStuckRow | None) -> dict[str, Any] | None:
    """The mark as the API and the console show it (None: not stuck)."""
    if row is None:
        return None
    return {
        "step": row.step,
        "since": row.since,
        "failed_rounds": row.failed_rounds,
        "error": row.error,
        "gave_up_at": row.gave_up_at,
    }
