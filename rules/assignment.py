"""Who gets a callback, and who takes it over on escalation.

Ties are broken by the lowest staff id so the same inputs always give the same answer (a workflow
replaying its history must decide exactly as it did the first time). Only staff on shift at that moment
are picked (rules/shifts.py); `next_shift_start` says when the first of the others comes on shift.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from uuid import UUID

from models.callbacks import Priority, StaffCandidate


def should_auto_assign(priority: Priority, auto_assign: bool) -> bool:
    """High and urgent callbacks are always auto-assigned; normal ones when `auto_assign` is on."""
    return priority in (Priority.HIGH, Priority.URGENT) or auto_assign


def _least_loaded(candidates: Iterable[StaffCandidate]) -> StaffCandidate | None:
    return min(candidates, key=lambda c: (c.open_callbacks, str(c.id)), default=None)


def _can_take(candidate: StaffCandidate) -> bool:
    return candidate.active and candidate.has_capacity


def _available(candidates: Iterable[StaffCandidate]) -> list[StaffCandidate]:
    return [c for c in candidates if _can_take(c) and c.on_shift]


def choose_assignee(
    candidates: Sequence[StaffCandidate], *, branch_id: int, preferred: UUID | None
) -> UUID | None:
    """Preferred staff if active → staff linked to the service with the fewest open callbacks →
    the least-loaded active staff of the branch. None when nobody can take it."""
    available = _available(candidates)
    if preferred is not None:
        for candidate in available:
            if candidate.id == preferred:
                return candidate.id
    in_branch = [c for c in available if c.branch_id == branch_id]
    chosen = _least_loaded(c for c in in_branch if c.linked_to_service) or _least_loaded(in_branch)
    return chosen.id if chosen else None


def choose_escalation_target(
    candidates: Sequence[StaffCandidate],
    *,
    branch_id: int,
    current: UUID | None,
    earlier: Sequence[UUID],
) -> UUID | None:
    """A different active staff member of the branch, the least loaded, avoiding earlier assignees where
    anyone else is available. None when nobody but the current assignee could take it."""
    others = [c for c in _available(candidates) if c.branch_id == branch_id and c.id != current]
    fresh = [c for c in others if c.id not in earlier]
    chosen = _least_loaded(fresh) or _least_loaded(others)
    return chosen.id if chosen else None


def next_shift_start(
    candidates: Sequence[StaffCandidate],
    *,
    branch_id: int,
    after: datetime,
    preferred: UUID | None = None,
    exclude: Collection[UUID | None] = (),
) -> datetime | None:
    """When the first of the staff who could take the callback but are off shift now (active, with
    capacity, of the branch or the preferred one, not excluded) comes on shift; None when nobody will."""
    return min(
        (
            c.next_on_shift_at
            for c in candidates
            if _can_take(c)
            and not c.on_shift
            and (c.branch_id == branch_id or c.id == preferred)
            and c.id not in exclude
            and c.next_on_shift_at is not None
            and c.next_on_shift_at > after
        ),
        default=None,
    )


def at_capacity(candidates: Sequence[StaffCandidate], full: Collection[UUID]) -> list[StaffCandidate]:
    """The candidates with those in `full` at their `max_open_callbacks`: a write found their last place
    taken by concurrent claims (loaded a moment earlier, they still looked free), so the rules must not
    pick them again."""
    return [
        c.model_copy(update={"open_callbacks": c.max_open_callbacks})
        if c.id in full and c.max_open_callbacks is not None
        else c
        for c in candidates
    ]
