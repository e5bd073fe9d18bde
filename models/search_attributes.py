"""The custom search attributes ops filter callbacks by in the Temporal UI (docs/operations.md)."""

from __future__ import annotations

from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from models.callbacks import CallbackState

CALLBACK_STATUS = SearchAttributeKey.for_keyword("CallbackStatus")
CALLBACK_PRIORITY = SearchAttributeKey.for_keyword("CallbackPriority")
COMPANY_ID = SearchAttributeKey.for_int("CompanyId")
BRANCH_ID = SearchAttributeKey.for_int("BranchId")
ASSIGNED_STAFF_ID = SearchAttributeKey.for_keyword("AssignedStaffId")
SLA_DEADLINE = SearchAttributeKey.for_datetime("SlaDeadline")
ESCALATION_COUNT = SearchAttributeKey.for_int("EscalationCount")
# Set by the workflow while a database step keeps failing (workflows/db_steps.py); false once it got through.
CALLBACK_STUCK = SearchAttributeKey.for_bool("CallbackStuck")

ALL_KEYS = (
    CALLBACK_STATUS,
    CALLBACK_PRIORITY,
    COMPANY_ID,
    BRANCH_ID,
    ASSIGNED_STAFF_ID,
    SLA_DEADLINE,
    ESCALATION_COUNT,
    CALLBACK_STUCK,
)


def updates_for(state: CallbackState) -> list[SearchAttributeUpdate[Any]]:
    """Every attribute from the state; an unassigned callback has its AssignedStaffId unset."""
    updates: list[SearchAttributeUpdate[Any]] = [
        CALLBACK_STATUS.value_set(state.status.value),
        CALLBACK_PRIORITY.value_set(state.priority.value),
        COMPANY_ID.value_set(state.request.company_id),
        BRANCH_ID.value_set(state.request.branch_id),
        SLA_DEADLINE.value_set(state.expires_at),
        ESCALATION_COUNT.value_set(state.escalation_count),
        ASSIGNED_STAFF_ID.value_set(str(state.assigned_to))
        if state.assigned_to
        else ASSIGNED_STAFF_ID.value_unset(),
    ]
    return updates


def changed_updates(state: CallbackState, known: dict[str, Any]) -> list[SearchAttributeUpdate[Any]]:
    """The attributes of `state` that differ from `known` (name -> value, None = unset): a step that moves
    none of them (most staff actions but the last) upserts nothing, and so writes no history event and no
    visibility row."""
    return [update for update in updates_for(state) if known.get(update.key.name) != update.value]


def known_from(attributes: TypedSearchAttributes) -> dict[str, Any]:
    """What a workflow's current attributes say (`workflow.info().typed_search_attributes`)."""
    return {pair.key.name: pair.value for pair in attributes}


def initial(company_id: int, branch_id: int, priority: str) -> TypedSearchAttributes:
    """What a callback shows in the UI from the moment it is started, before its first transition."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(CALLBACK_STATUS, "pending"),
            SearchAttributePair(CALLBACK_PRIORITY, priority),
            SearchAttributePair(COMPANY_ID, company_id),
            SearchAttributePair(BRANCH_ID, branch_id),
            SearchAttributePair(ESCALATION_COUNT, 0),
        ]
    )


def typed_for(state: CallbackState) -> TypedSearchAttributes:
    """Every attribute of a state, for starting a workflow that carries an existing state (the
    reconciliation sweep, a prepared start): it shows in the UI as it is, not as "pending", from its first
    moment. The same attributes as `updates_for`, so a run started with them finds nothing to upsert."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(update.key, update.value)
            for update in updates_for(state)
            if update.value is not None
        ]
    )
