"""A callback whose workflow cannot get a database step through: what it shows while it keeps trying.

The workflow keeps the mark (its `stuck` query answers it), sets the `CallbackStuck` search attribute and
writes the mark to `callback_stuck` (models/tables/stuck.py) for the API, the console and the
`callbacks_stuck_workflows` gauge; the step's success clears all three (docs/operations.md, "Stuck
callbacks"). No personal data: the failure is named by its type, never by its message.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class StuckStep(StrEnum):
    """The database steps of the callback workflow (each a local activity)."""

    PREPARE = "prepare"
    CANDIDATES = "candidates"
    PERSIST = "persist"


class StuckMark(BaseModel):
    """A step that has kept failing past the threshold of rules/stuck.py; `gave_up_at` once the workflow
    stopped retrying on its own and waits for an operator (the `retry_stuck` signal)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    callback_id: UUID
    company_id: int
    step: StuckStep
    # The first failure of the step, and how many rounds of tries have failed since.
    since: datetime
    failed_rounds: int = Field(ge=0)
    # The last failure's type (e.g. `OperationalError`, `TimeoutError`).
    error: str = Field(max_length=200)
    gave_up_at: datetime | None = None


class ClearStuck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    callback_id: UUID


RETRY_STUCK_SIGNAL = "retry_stuck"
STUCK_QUERY = "stuck"
