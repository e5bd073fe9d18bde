"""What a failed step write tells the callback workflow (activities/callbacks.py raises them): a reference
found deleted under the callback, or a staff member whose capacity was taken first. Anything else is None:
the caller re-raises it."""

from __future__ import annotations

from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.callbacks import DeadReferences


def dead_references_found(err: ActivityError | ApplicationError) -> DeadReferences | None:
    """What a failed write found deleted under the callback, or None for any other failure. (A failed
    local activity reaches the workflow as its ApplicationError, a failed activity as an ActivityError.)"""
    cause = err.cause if isinstance(err, ActivityError) else err
    if not isinstance(cause, ApplicationError) or cause.type != names.DEAD_REFERENCE or not cause.details:
        return None
    return DeadReferences.model_validate(cause.details[0])


def capacity_taken(err: ActivityError | ApplicationError) -> UUID | None:
    """The staff member whose capacity a failed write found taken (activities/callbacks.py), or None for
    any other failure."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if not isinstance(cause, ApplicationError) or cause.type != names.CAPACITY_FULL or not cause.details:
        return None
    return UUID(str(cause.details[0]))
