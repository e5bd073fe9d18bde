"""Messages of the periodic jobs: the reconciliation sweep and the data retention job."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class SweepPage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    after: UUID | None = None  # keyset cursor: rows with a greater id
    limit: int = Field(default=200, gt=0, le=10_000)
    # A row written since this moment is not compared with its running workflow's state (no query): its
    # workflow is writing it right now. It is still checked for a workflow at all.
    settled_before: datetime | None = None


class SweepReport(BaseModel):
    """What a sweep looked at and what it fixed. `started`: open rows that had no running workflow and got
    one; `repersisted`: rows older than their workflow's state, written again from it; `failed`: rows it
    could not repair (their ids and the kind of error are in `problems`; the sweep went on past them)."""

    model_config = ConfigDict(extra="forbid")

    checked: int = 0
    started: int = 0
    repersisted: int = 0
    already_started: int = 0  # another sweep (or a client) started the workflow first
    failed: int = 0
    deferred: int = 0  # left for the next run, which has a budget of its own (workflows → rows)
    problems: list[str] = Field(default_factory=list)
    # Of a page: the cursor of the next one. Of a whole sweep: where the next run resumes, when this one
    # stopped at its `rows_per_run` (None: it got to the end, the next one starts from the beginning).
    next_after: UUID | None = None

    def add(self, other: SweepReport) -> None:
        self.checked += other.checked
        self.started += other.started
        self.repersisted += other.repersisted
        self.already_started += other.already_started
        self.failed += other.failed
        self.deferred += other.deferred
        # Bounded: a sweep over a broken import must not grow the workflow history without limit.
        self.problems = (self.problems + other.problems)[:50]


class RetentionRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cutoff: datetime  # purge rows soft-deleted before this moment
    batch_size: int = Field(default=1000, gt=0)


class RetentionReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cutoff: datetime
    purged: dict[str, int] = Field(default_factory=dict)  # table → rows deleted

    @property
    def total(self) -> int:
        return sum(self.purged.values())


class SweepConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    page_size: int = Field(default=200, gt=0, le=10_000)
    # At most this many rows per run (each costs a describe and maybe a query of its workflow); the next
    # run carries on where this one stopped (its last completion result). None: all of them.
    rows_per_run: int | None = Field(default=None, gt=0)
    # Do not query the running workflows of rows written within this many minutes (see SweepPage).
    settle_minutes: float = Field(default=0.0, ge=0)
    # Set only when a long sweep continues as new: where it was and what it had found so far.
    resume_after: UUID | None = None
    carried: SweepReport | None = None


class RetentionConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retention_days: float = Field(default=90.0, gt=0)
    batch_size: int = Field(default=1000, gt=0)
