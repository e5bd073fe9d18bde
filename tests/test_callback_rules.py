"""The pure callback rules: SLA clock, staff choice, transitions, callback policy overlay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.callbacks import (
    CallbackSettings,
    CallbackState,
    CallbackStatus,
    Escalation,
    EscalationReason,
    NewCallback,
    Priority,
    StaffAction,
    StaffCandidate,
    mask_phone,
)
from rules.assignment import choose_assignee, choose_escalation_target, should_auto_assign
from rules.callback_machine import status_after_assignment
from rules.callback_settings import apply_callback_policy
from rules.sla import DueKind, next_deadline, sla_deadline
from rules.transitions import ALLOWED_FROM, TransitionRefused, check_allowed

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
DEFAULTS = CallbackSettings(
    sla_hours={Priority.URGENT: 2, Priority.HIGH: 4, Priority.NORMAL: 24},
    auto_assign=True,
    escalation_cooldown_hours=4,
    max_contact_attempts=3,
    max_escalations=3,
)


def _state(priority: Priority = Priority.NORMAL, **changes: object) -> CallbackState:
    request = NewCallback(company_id=1, branch_id=1, customer_name="A", phone_number="+4930123456")
    state = CallbackState(
        id=uuid.uuid4(),
        request=request,
        settings=DEFAULTS,
        priority=priority,
        created_at=T0,
        expires_at=sla_deadline(T0, priority, DEFAULTS),
    )
    return state.model_copy(update=changes)


def _escalated(state: CallbackState, *hours: float) -> CallbackState:
    escalations = [
        Escalation(number=i + 1, reason=EscalationReason.SLA_BREACH, at=T0 + timedelta(hours=h))
        for i, h in enumerate(hours)
    ]
    return state.model_copy(update={"escalations": escalations, "warnings_sent": [50, 75]})


def test_sla_hours_per_priority() -> None:
    assert [sla_deadline(T0, p, DEFAULTS) - T0 for p in Priority] == [
        timedelta(hours=2),
        timedelta(hours=4),
        timedelta(hours=24),
    ]


def test_the_normal_timeline_warnings_escalations_expiry() -> None:
    state = _state()
    first = next_deadline(state, T0)
    assert first is not None
    assert (first.kind, first.at, first.warning_percent) == (DueKind.WARNING, T0 + timedelta(hours=12), 50)
    state = state.model_copy(update={"warnings_sent": [50]})
    second = next_deadline(state, T0 + timedelta(hours=12))
    assert second is not None
    assert (second.kind, second.at) == (DueKind.WARNING, T0 + timedelta(hours=18))
    timeline = []
    for done in ((), (24,), (24, 28), (24, 28, 32)):
        due = next_deadline(_escalated(state, *done), T0 + timedelta(hours=24))
        assert due is not None
        timeline.append((due.kind, (due.at - T0) / timedelta(hours=1)))
    assert timeline == [
        (DueKind.ESCALATION, 24),
        (DueKind.ESCALATION, 28),
        (DueKind.ESCALATION, 32),
        (DueKind.EXPIRY, 36),
    ]


def test_a_manual_escalation_pushes_the_next_automatic_one_by_a_cooldown() -> None:
    manual = Escalation(number=1, reason=EscalationReason.MANUAL, at=T0 + timedelta(hours=23))
    state = _state().model_copy(update={"escalations": [manual], "warnings_sent": [50, 75]})
    due = next_deadline(state, T0 + timedelta(hours=23))
    assert due is not None
    assert (due.kind, due.at) == (DueKind.ESCALATION, T0 + timedelta(hours=27))


def test_no_late_warnings_once_breached() -> None:
    # Raised to urgent at 13 h: already breached, so escalate now instead of warning.
    state = _state().model_copy(
        update={"priority": Priority.URGENT, "expires_at": T0 + timedelta(hours=2), "warnings_sent": [50]}
    )
    due = next_deadline(state, T0 + timedelta(hours=13))
    assert due is not None
    assert (due.kind, due.at) == (DueKind.ESCALATION, T0 + timedelta(hours=2))


def test_terminal_callbacks_have_no_deadline() -> None:
    for status in (CallbackStatus.COMPLETED, CallbackStatus.CANCELLED, CallbackStatus.EXPIRED):
        assert next_deadline(_state(status=status), T0) is None


def test_zero_escalations_allowed_means_expiry_at_the_deadline() -> None:
    settings = DEFAULTS.model_copy(update={"max_escalations": 0})
    state = _state(warnings_sent=[50, 75]).model_copy(update={"settings": settings})
    due = next_deadline(state, T0)
    assert due is not None
    assert (due.kind, due.at) == (DueKind.EXPIRY, T0 + timedelta(hours=24))


def _staff(n: int, *, branch: int = 1, load: int = 0, linked: bool = False, **kw: object) -> StaffCandidate:
    return StaffCandidate(
        id=uuid.UUID(int=n), branch_id=branch, open_callbacks=load, linked_to_service=linked, **kw
    )


def test_assignment_order() -> None:
    candidates = [
        _staff(1, load=0),
        _staff(2, load=3, linked=True),
        _staff(3, load=1, linked=True),
        _staff(4, load=1, linked=True),
        _staff(5, active=False, linked=True),
        _staff(6, branch=2),
    ]
    assert choose_assignee(candidates, branch_id=1, preferred=uuid.UUID(int=6)) == uuid.UUID(int=6)
    assert choose_assignee(candidates, branch_id=1, preferred=uuid.UUID(int=5)) == uuid.UUID(int=3)
    unlinked = [c.model_copy(update={"linked_to_service": False}) for c in candidates]
    assert choose_assignee(unlinked, branch_id=1, preferred=None) == uuid.UUID(int=1)
    assert choose_assignee([_staff(5, active=False)], branch_id=1, preferred=None) is None


def test_staff_at_capacity_is_passed_over() -> None:
    full = _staff(1, load=2, max_open_callbacks=2)
    assert choose_assignee([full, _staff(2, load=5)], branch_id=1, preferred=full.id) == uuid.UUID(int=2)


def test_escalation_target_avoids_current_then_earlier_assignees() -> None:
    team = [_staff(1), _staff(2, load=1), _staff(3, load=2)]
    one, two, three = (uuid.UUID(int=n) for n in (1, 2, 3))
    assert choose_escalation_target(team, branch_id=1, current=one, earlier=[]) == two
    assert choose_escalation_target(team, branch_id=1, current=two, earlier=[one]) == three
    # Everyone else was already on it: the least loaded of the others.
    assert choose_escalation_target(team, branch_id=1, current=three, earlier=[one, two]) == one
    assert choose_escalation_target([_staff(1)], branch_id=1, current=one, earlier=[]) is None


@given(
    loads=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=8),
    current=st.integers(min_value=1, max_value=8),
)
def test_escalation_never_returns_the_current_assignee(loads: list[int], current: int) -> None:
    team = [_staff(i + 1, load=load) for i, load in enumerate(loads)]
    chosen = choose_escalation_target(team, branch_id=1, current=uuid.UUID(int=current), earlier=[])
    assert chosen != uuid.UUID(int=current)
    if chosen is not None:
        others = [c for c in team if c.id != uuid.UUID(int=current)]
        assert min(c.open_callbacks for c in others) == next(c.open_callbacks for c in team if c.id == chosen)


def test_auto_assign_rule() -> None:
    assert should_auto_assign(Priority.URGENT, False)
    assert should_auto_assign(Priority.HIGH, False)
    assert not should_auto_assign(Priority.NORMAL, False)
    assert should_auto_assign(Priority.NORMAL, True)


def test_transition_table_matches_the_design() -> None:
    S = CallbackStatus
    assert ALLOWED_FROM[StaffAction.MARK_CONTACTED] == {S.ASSIGNED}
    assert ALLOWED_FROM[StaffAction.COMPLETE] == {S.ASSIGNED, S.CONTACTED}
    assert ALLOWED_FROM[StaffAction.RECORD_ATTEMPT] == {S.ASSIGNED, S.CONTACTED}
    for action in (StaffAction.ASSIGN, StaffAction.CANCEL, StaffAction.ESCALATE, StaffAction.CHANGE_PRIORITY):
        assert ALLOWED_FROM[action] == {S.PENDING, S.ASSIGNED, S.CONTACTED}
    with pytest.raises(TransitionRefused, match="cannot mark contacted: the callback is pending"):
        check_allowed(StaffAction.MARK_CONTACTED, S.PENDING)
    assert status_after_assignment(S.PENDING) == S.ASSIGNED
    assert status_after_assignment(S.CONTACTED) == S.CONTACTED


def test_a_callback_policy_overlays_only_what_it_sets() -> None:
    merged = apply_callback_policy(DEFAULTS, {"sla_hours": {"urgent": 1}, "max_escalations": 5})
    assert merged.sla_hours == {Priority.URGENT: 1, Priority.HIGH: 4, Priority.NORMAL: 24}
    assert (merged.max_escalations, merged.escalation_cooldown_hours) == (5, 4)


def test_phone_masking_keeps_country_and_last_digits() -> None:
    assert mask_phone("+4930123456") == "+49 ******56"


def test_a_number_read_back_again_is_not_parsed_again() -> None:
    """Validated where it enters; every later deserialisation of the same request finds it parsed."""
    from models.callbacks import NewCallback
    from models.phones import _normalized

    request = NewCallback(company_id=1, branch_id=1, customer_name="Erika", phone_number="+49 30 7654321")
    before = _normalized.cache_info()
    for _ in range(3):
        assert NewCallback.model_validate_json(request.model_dump_json()) == request
    after = _normalized.cache_info()
    assert after.misses == before.misses
    assert after.hits == before.hits + 3
    with pytest.raises(ValueError, match="phone number"):
        NewCallback(company_id=1, branch_id=1, customer_name="Erika", phone_number="+49 30 12")
