"""The callback state machine and the staff-action table, without Temporal: every step is a pure function
of the state, the input, the time and the staff loaded for it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.calcom import FoundSlots, Slot
from models.callbacks import (
    Assign,
    AttemptOutcome,
    CallbackSettings,
    CallbackState,
    CallbackStatus,
    Cancel,
    ChangePriority,
    Complete,
    Escalate,
    EscalationReason,
    MarkContacted,
    NewCallback,
    PreparedCallback,
    Priority,
    RecordAttempt,
    StaffAction,
    StaffCandidate,
    StaffCommand,
)
from rules import callback_machine as machine
from rules.callback_machine import StaffNeeded, StaffRefused
from rules.sla import Deadline, DueKind
from rules.staff_actions import BY_VERB, STAFF_ACTIONS, StaffActionSpec, spec_of

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
SETTINGS = CallbackSettings(
    sla_hours={Priority.URGENT: 2, Priority.HIGH: 4, Priority.NORMAL: 24},
    auto_assign=True,
    escalation_cooldown_hours=4,
    max_contact_attempts=3,
    max_escalations=3,
)
BRANCH = 7
ANNA, BERT, CARLA = (uuid.UUID(int=n) for n in (1, 2, 3))


def staff(*ids: uuid.UUID, active: bool = True, loads: Sequence[int] = ()) -> list[StaffCandidate]:
    return [
        StaffCandidate(id=i, branch_id=BRANCH, active=active, open_callbacks=loads[n] if loads else 0)
        for n, i in enumerate(ids)
    ]


def request(priority: Priority = Priority.NORMAL, **changes: Any) -> NewCallback:
    values: dict[str, Any] = {
        "company_id": 1,
        "branch_id": BRANCH,
        "customer_name": "Erika",
        "phone_number": "+4930123456",
        "priority": priority,
    }
    return NewCallback(**{**values, **changes})


def opened(
    priority: Priority = Priority.NORMAL, candidates: Sequence[StaffCandidate] = (), auto_assign: bool = True
) -> CallbackState:
    prepared = PreparedCallback(
        settings=SETTINGS.model_copy(update={"auto_assign": auto_assign}), candidates=list(candidates)
    )
    return machine.open_callback(uuid.UUID(int=99), request(priority), prepared, T0).state


def act(
    state: CallbackState,
    command: StaffCommand,
    candidates: Sequence[StaffCandidate] = (),
    at: datetime = T0 + timedelta(hours=1),
) -> machine.Step:
    """What the workflow does for an action: refuse outside its states, load staff if asked, apply."""
    spec = spec_of(command)
    assert spec.allows(state.status), (spec.action, state.status)
    needed = spec.staff(state, command)
    return spec.apply(state, command, at, candidates if needed is not None else [])


def event_types(step: machine.Step) -> list[str]:
    return [event.type for event in step.events]


# --- the table ---------------------------------------------------------------------------------------


def test_one_row_per_action_and_every_name_unique() -> None:
    assert set(STAFF_ACTIONS) == set(StaffAction)
    specs = list(STAFF_ACTIONS.values())
    for attribute in ("command", "path", "verb"):
        values = [getattr(spec, attribute) for spec in specs]
        assert len(set(values)) == len(values), attribute
    assert all(spec.action is action for action, spec in STAFF_ACTIONS.items())
    assert all(spec.summary and not spec.allowed_from & {CallbackStatus.COMPLETED} for spec in specs)


def test_the_public_names_stay_as_clients_know_them() -> None:
    """Update/Signal names are in recorded histories; paths and verbs in scripts and API clients."""
    names = {spec.action.value: (spec.path, spec.verb) for spec in STAFF_ACTIONS.values()}
    assert names == {
        "assign": ("assign", "assign"),
        "mark_contacted": ("contacted", "contacted"),
        "record_attempt": ("attempts", "attempt"),
        "complete": ("complete", "complete"),
        "cancel": ("cancel", "cancel"),
        "escalate": ("escalate", "escalate"),
        "change_priority": ("priority", "priority"),
    }
    assert BY_VERB["attempt"] is STAFF_ACTIONS[StaffAction.RECORD_ATTEMPT]


def test_a_command_names_its_action() -> None:
    assert spec_of(Assign(staff_id=ANNA)).action is StaffAction.ASSIGN
    assert spec_of(ChangePriority(priority=Priority.HIGH)).action is StaffAction.CHANGE_PRIORITY


@pytest.mark.parametrize("status", list(CallbackStatus))
def test_terminal_callbacks_take_no_action(status: CallbackStatus) -> None:
    allowed = {spec.action for spec in STAFF_ACTIONS.values() if spec.allows(status)}
    assert (allowed == set()) == status.is_terminal


# --- steps the engine takes on its own ---------------------------------------------------------------


def test_opening_sets_the_deadline_and_auto_assigns_the_least_loaded() -> None:
    step = machine.open_callback(
        uuid.UUID(int=99),
        request(Priority.HIGH),
        PreparedCallback(settings=SETTINGS, candidates=staff(ANNA, BERT, loads=(2, 1))),
        T0,
    )
    assert step.state.expires_at == T0 + timedelta(hours=4)
    assert (step.state.status, step.state.assigned_to, step.state.version) == (
        CallbackStatus.ASSIGNED,
        BERT,
        1,
    )
    assert event_types(step) == ["callback.created", "callback.assigned"]
    assert [event.seq for event in step.events] == [1, 2]
    assert all(event.actor == "system" and event.at == T0 for event in step.events)


def test_a_normal_callback_without_auto_assign_stays_pending() -> None:
    state = opened(candidates=staff(ANNA), auto_assign=False)
    assert (state.status, state.assigned_to) == (CallbackStatus.PENDING, None)


def test_the_clock_warns_escalates_and_expires() -> None:
    state = opened(candidates=staff(ANNA))
    warned = machine.on_deadline(state, Deadline(DueKind.WARNING, T0, warning_percent=50), T0, [])
    assert warned.state.warnings_sent == [50]
    assert warned.events[0].payload["percent"] == 50
    assert machine.staff_for_deadline(Deadline(DueKind.WARNING, T0, 50)) is None

    breach = Deadline(DueKind.ESCALATION, state.expires_at)
    assert machine.staff_for_deadline(breach) == StaffNeeded()
    escalated = machine.on_deadline(state, breach, state.expires_at, staff(ANNA, BERT))
    assert escalated.escalation is not None
    assert escalated.escalation.reason is EscalationReason.SLA_BREACH
    assert (escalated.state.assigned_to, escalated.state.previous_assignees) == (BERT, [ANNA])
    assert event_types(escalated) == ["callback.escalated", "callback.assigned"]

    expired = machine.on_deadline(state, Deadline(DueKind.EXPIRY, T0), T0 + timedelta(hours=36), [])
    assert (expired.state.status, expired.state.expired_at) == (
        CallbackStatus.EXPIRED,
        T0 + timedelta(hours=36),
    )
    assert expired.actor == "sla-clock"


def test_slot_search_uses_the_preferred_window_only_when_it_is_usable() -> None:
    now = T0
    window = {"start": (T0 - timedelta(hours=1)).isoformat(), "end": (T0 + timedelta(days=2)).isoformat()}
    inside = machine.slot_search(request(service_id=5, preferred_time_window=window), now)
    assert (inside.window_start, inside.window_end) == (T0, T0 + timedelta(days=2))  # clipped to now
    for unusable in (
        {"start": "soon", "end": "later"},
        {"start": "2026-03-29T10:00:00", "end": "2026-03-29T12:00:00"},  # no time zone
        {"start": (T0 - timedelta(days=2)).isoformat(), "end": (T0 - timedelta(days=1)).isoformat()},  # over
        {"start": T0.isoformat(), "end": (T0 + timedelta(days=400)).isoformat()},  # too long to search
    ):
        search = machine.slot_search(request(service_id=5, preferred_time_window=unusable), now)
        assert (search.window_start, search.after) == (None, now), unusable


def test_suggested_slots_are_attached() -> None:
    slot = Slot(start=T0 + timedelta(days=1), day=(T0 + timedelta(days=1)).date())
    found = FoundSlots(
        service_id=5,
        event_type_id=11,
        time_zone="Europe/Berlin",
        searched_from=T0,
        searched_until=T0 + timedelta(days=14),
        slots=[slot],
    )
    step = machine.slots_suggested(opened(), found, T0)
    assert step.state.suggested_slots == [slot]
    assert step.events[0].payload == {"count": 1, "first": slot.start.isoformat(), "note": None}


# --- staff actions ---------------------------------------------------------------------------------


def test_a_step_works_on_a_copy() -> None:
    state = opened(candidates=staff(ANNA))
    step = act(state, Complete(notes="done", actor="staff:anna"))
    assert state.status is CallbackStatus.ASSIGNED  # untouched until the caller makes the step current
    assert step.state.version == state.version + 1
    assert step.events[0].actor == "staff:anna"


def test_assign_asks_for_the_staff_member_and_refuses_anyone_inactive_or_unknown() -> None:
    state = opened(candidates=staff(ANNA))
    command = Assign(staff_id=BERT)
    assert STAFF_ACTIONS[StaffAction.ASSIGN].staff(state, command) == StaffNeeded(include=(BERT,))
    moved = act(state, command, staff(ANNA, BERT))
    assert (moved.state.assigned_to, moved.state.previous_assignees) == (BERT, [ANNA])
    assert moved.events[0].payload == {"staff_id": str(BERT), "previous_staff_id": str(ANNA)}
    for candidates in (staff(ANNA), staff(BERT, active=False)):
        with pytest.raises(StaffRefused, match=f"staff {BERT} is not an active staff member of company 1"):
            act(state, command, candidates)


def test_contacted_then_completed_on_time_or_late() -> None:
    contacted = act(opened(candidates=staff(ANNA)), MarkContacted()).state
    assert (contacted.status, contacted.contacted_at) == (CallbackStatus.CONTACTED, T0 + timedelta(hours=1))
    on_time = act(contacted, Complete(notes="booked"))
    assert (on_time.state.status, on_time.state.completion_notes) == (CallbackStatus.COMPLETED, "booked")
    assert on_time.events[0].payload == {"notes": "booked", "on_time": True}
    late = act(contacted, Complete(notes="booked"), at=T0 + timedelta(hours=25))
    assert late.events[0].payload["on_time"] is False


def test_every_third_failed_attempt_escalates_to_someone_else() -> None:
    state = opened(candidates=staff(ANNA))
    spec = STAFF_ACTIONS[StaffAction.RECORD_ATTEMPT]
    needed: list[bool] = []
    for number in range(1, 7):
        command = RecordAttempt(outcome=AttemptOutcome.BUSY, notes=f"try {number}")
        needed.append(spec.staff(state, command) is not None)
        step = act(state, command, staff(ANNA, BERT, CARLA))
        state = step.state
        assert state.attempts[-1].number == number
    assert needed == [False, False, True, False, False, True]
    assert [e.reason for e in state.escalations] == [EscalationReason.MULTIPLE_ATTEMPTS_FAILED] * 2
    assert state.escalations[0].details == "3 failed contact attempts"
    assert (state.assigned_to, state.previous_assignees) == (CARLA, [ANNA, BERT])


def test_cancel_records_the_reason() -> None:
    step = act(opened(), Cancel(reason="customer wrote instead"))
    assert (step.state.status, step.state.cancel_reason) == (
        CallbackStatus.CANCELLED,
        "customer wrote instead",
    )


def test_manual_escalation_with_nobody_else_keeps_the_assignee() -> None:
    step = act(opened(candidates=staff(ANNA)), Escalate(reason="angry", details="called twice"), staff(ANNA))
    assert step.escalation is not None
    assert (step.escalation.reason, step.escalation.details) == (
        EscalationReason.MANUAL,
        "angry: called twice",
    )
    assert (step.escalation.escalated_to, step.state.assigned_to) == (None, ANNA)
    assert event_types(step) == ["callback.escalated"]


def test_a_priority_change_moves_the_deadline_from_the_creation_time() -> None:
    step = act(opened(), ChangePriority(priority=Priority.URGENT), at=T0 + timedelta(hours=3))
    assert step.state.expires_at == T0 + timedelta(hours=2)  # already breached: the clock acts at once
    assert step.events[0].payload["previous"] == "normal"


COMMANDS: list[StaffCommand] = [
    Assign(staff_id=BERT),
    MarkContacted(),
    RecordAttempt(outcome=AttemptOutcome.NO_ANSWER),
    Complete(notes="done"),
    Cancel(),
    Escalate(reason="manual"),
    ChangePriority(priority=Priority.HIGH),
]


@given(st.lists(st.sampled_from(COMMANDS), max_size=25))
def test_any_sequence_of_actions_keeps_the_books_straight(commands: list[StaffCommand]) -> None:
    """Whatever staff do, in any order: versions and event numbers count up by one, nothing changes after a
    terminal state, and every event of a step belongs to it."""
    state = opened(candidates=staff(ANNA))
    for command in commands:
        spec: StaffActionSpec[Any] = spec_of(command)
        if not spec.allows(state.status):
            continue
        step = act(state, command, staff(ANNA, BERT, CARLA))
        assert step.state.version == state.version + 1
        assert [e.seq for e in step.events] == list(range(state.event_count + 1, step.state.event_count + 1))
        assert step.events, spec.action
        state = step.state
    if state.status.is_terminal:
        assert not any(spec.allows(state.status) for spec in STAFF_ACTIONS.values())
