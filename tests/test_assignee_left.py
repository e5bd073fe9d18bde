"""The "assignee left" transition (a staff member was deactivated), without Temporal: who takes the callback
over, what is recorded, and when nothing happens."""

from __future__ import annotations

import uuid
from datetime import timedelta

from models.callbacks import (
    CallbackState,
    CallbackStatus,
    Cancel,
    MarkContacted,
    NewCallback,
    PreparedCallback,
    Priority,
    StaffCandidate,
)
from rules import assignee_left
from rules import callback_machine as machine
from tests.test_callback_machine import ANNA, BERT, BRANCH, CARLA, SETTINGS, T0, act, event_types, staff

LATER = T0 + timedelta(hours=2)


def assigned_to_anna(preferred: uuid.UUID | None = None) -> CallbackState:
    request = NewCallback(
        company_id=1,
        branch_id=BRANCH,
        customer_name="Erika",
        phone_number="+4930123456",
        priority=Priority.HIGH,
        preferred_staff_id=preferred,
    )
    prepared = PreparedCallback(settings=SETTINGS, candidates=staff(ANNA))
    state = machine.open_callback(uuid.UUID(int=99), request, prepared, T0).state
    assert state.assigned_to == ANNA
    return state


def test_goes_to_the_least_loaded_colleague_and_says_why() -> None:
    state = assigned_to_anna()
    # Anna is inactive by now (the API deactivates before it signals); Bert is busier than Carla.
    candidates = [*staff(ANNA, active=False), *staff(BERT, CARLA, loads=[3, 1])]
    assert assignee_left.staff_for_assignee_left(state, ANNA) is not None
    step = assignee_left.assignee_left(state, ANNA, LATER, candidates, actor="admin-key:abcd")
    assert step is not None
    assert step.state.assigned_to == CARLA
    assert step.state.status is CallbackStatus.ASSIGNED
    assert step.state.previous_assignees == [ANNA]
    assert step.state.version == state.version + 1
    assert event_types(step) == ["callback.reassigned", "callback.assigned"]
    reassigned = step.events[0]
    assert reassigned.payload == {
        "reason": "staff_deactivated",
        "previous_staff_id": str(ANNA),
        "staff_id": str(CARLA),
    }
    assert reassigned.actor == "admin-key:abcd"
    assert step.escalation is None  # a reassignment is not an escalation


def test_prefers_staff_linked_to_the_service_and_never_the_leaver() -> None:
    state = assigned_to_anna()
    candidates = [
        StaffCandidate(id=ANNA, branch_id=BRANCH, active=True, open_callbacks=0),  # not yet seen inactive
        StaffCandidate(id=BERT, branch_id=BRANCH, linked_to_service=True, open_callbacks=5),
        StaffCandidate(id=CARLA, branch_id=BRANCH, open_callbacks=0),
    ]
    step = assignee_left.assignee_left(state, ANNA, LATER, candidates)
    assert step is not None
    assert step.state.assigned_to == BERT


def test_nobody_else_leaves_it_pending() -> None:
    state = assigned_to_anna()
    full = StaffCandidate(id=BERT, branch_id=BRANCH, open_callbacks=2, max_open_callbacks=2)
    other_branch = StaffCandidate(id=CARLA, branch_id=BRANCH + 1)
    step = assignee_left.assignee_left(state, ANNA, LATER, [*staff(ANNA, active=False), full, other_branch])
    assert step is not None
    assert step.state.status is CallbackStatus.PENDING
    assert step.state.assigned_to is None
    assert step.state.assigned_at is None
    assert step.state.previous_assignees == [ANNA]
    assert event_types(step) == ["callback.reassigned"]
    assert step.events[0].payload["staff_id"] is None
    # The SLA clock is untouched: the deadline stays.
    assert step.state.expires_at == state.expires_at


def test_a_contacted_callback_keeps_its_progress() -> None:
    contacted = act(assigned_to_anna(), MarkContacted()).state
    alone = assignee_left.assignee_left(contacted, ANNA, LATER, staff(ANNA, active=False))
    assert alone is not None
    assert alone.state.status is CallbackStatus.CONTACTED
    assert alone.state.assigned_to is None
    handed = assignee_left.assignee_left(contacted, ANNA, LATER, staff(BERT))
    assert handed is not None
    assert handed.state.status is CallbackStatus.CONTACTED
    assert handed.state.assigned_to == BERT


def test_nothing_to_do_when_it_is_not_theirs_or_no_longer_open() -> None:
    state = assigned_to_anna()
    assert assignee_left.assignee_left(state, BERT, LATER, staff(CARLA)) is None
    assert assignee_left.staff_for_assignee_left(state, BERT) is None
    cancelled = act(state, Cancel(reason="x")).state
    assert assignee_left.assignee_left(cancelled, ANNA, LATER, staff(BERT)) is None
    assert assignee_left.staff_for_assignee_left(cancelled, ANNA) is None


def test_the_preferred_staff_member_wins_when_active() -> None:
    state = assigned_to_anna(preferred=ANNA)
    # Anna was preferred and leaves; the next choice follows the rules among the others.
    step = assignee_left.assignee_left(state, ANNA, LATER, [*staff(ANNA, active=False), *staff(BERT, CARLA)])
    assert step is not None
    assert step.state.assigned_to == BERT  # equal loads: the lowest id
