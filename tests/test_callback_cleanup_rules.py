"""Erasure and dead references as pure steps (rules/personal_data.py, rules/dead_references.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from models.callbacks import (
    ERASED,
    AttemptOutcome,
    CallbackSettings,
    CallbackState,
    CallbackStatus,
    Complete,
    DeadReferences,
    Escalate,
    EscalationReason,
    NewCallback,
    PreparedCallback,
    Priority,
    RecordAttempt,
    StaffCandidate,
    mask_phone,
)
from rules import callback_machine as machine
from rules import dead_references, personal_data
from rules.callback_machine import Step

T0 = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
SETTINGS = CallbackSettings(
    sla_hours={Priority.URGENT: 2, Priority.HIGH: 4, Priority.NORMAL: 24},
    escalation_cooldown_hours=4,
    max_contact_attempts=3,
    max_escalations=3,
)
ANNA, BERT = uuid.UUID(int=1), uuid.UUID(int=2)
STAFF = [StaffCandidate(id=ANNA, branch_id=7), StaffCandidate(id=BERT, branch_id=7)]


def opened() -> CallbackState:
    request = NewCallback(
        company_id=1,
        branch_id=7,
        service_id=3,
        customer_id=9,
        customer_name="Zoe Quell",
        phone_number="+49 30 1234567",
        email="zoe@example.org",
        priority=Priority.HIGH,
        preferred_staff_id=ANNA,
        notes="allergic",
        metadata={"ref": "x"},
    )
    state = machine.open_callback(
        uuid.uuid4(), request, PreparedCallback(settings=SETTINGS, candidates=STAFF), T0
    ).state
    step = Step(state, "anna", T0 + timedelta(minutes=1))
    machine.record_attempt(step, RecordAttempt(outcome=AttemptOutcome.BUSY, notes="call after 5"), STAFF)
    machine.escalate(step, Escalate(reason="vip", details="Zoe insists"), STAFF)
    return step.state


def test_erasure_blanks_the_personal_fields_and_keeps_the_callback_going() -> None:
    state = opened()
    assert personal_data.has_personal_data(state)
    step = personal_data.erase_personal_data(state, "admin-key:abc", T0 + timedelta(hours=1))
    erased = step.state
    assert (erased.request.customer_name, erased.request.phone_number) == (ERASED, ERASED)
    assert (erased.request.email, erased.request.notes, erased.request.metadata) == (None, None, {})
    assert [a.notes for a in erased.attempts] == [None]
    assert [e.details for e in erased.escalations] == [None]
    # What is not personal stays: the clock, the assignee, the ids, the history's shape.
    same = ("status", "priority", "expires_at", "assigned_to", "warnings_sent", "created_at")
    assert {f: getattr(erased, f) for f in same} == {f: getattr(state, f) for f in same}
    assert (erased.request.customer_id, erased.request.service_id) == (9, 3)
    assert erased.version == state.version + 1
    assert [e.type for e in step.events] == ["callback.personal_data_erased"]
    assert step.events[0].payload == {}
    assert not personal_data.has_personal_data(erased)
    # The erased request still validates (it travels through the data converter).
    assert NewCallback.model_validate(erased.request.model_dump()).phone_number == ERASED
    assert mask_phone(ERASED) == ERASED

    done = Step(erased, "anna", T0 + timedelta(hours=2))
    machine.complete(done, Complete(notes="booked"), [])
    assert personal_data.has_personal_data(done.state)  # notes written after the erasure are new data


def test_event_payloads_lose_their_free_text() -> None:
    scrub = personal_data.scrub_event_payload
    assert scrub("callback.completed", {"notes": "Zoe is fine", "on_time": True}) == {
        "notes": None,
        "on_time": True,
    }
    assert scrub("callback.cancelled", {"reason": "moved away"}) == {"reason": None}
    escalated = {"number": 1, "reason": "manual", "details": "vip: Zoe", "escalated_to": str(BERT)}
    assert scrub("callback.escalated", escalated) == {**escalated, "details": None}
    assert scrub("callback.escalated", {**escalated, "details": None}) is None
    assert scrub("callback.created", {"priority": "high"}) is None
    assert scrub("callback.sla_warning", {"percent": 50}) is None


def test_dead_references_are_dropped_and_recorded() -> None:
    state = opened()
    assert state.assigned_to == BERT  # escalated from Anna to Bert
    step = Step(state, "sla-clock", T0 + timedelta(hours=3))
    dead = DeadReferences(fields=["customer_id", "assigned_to", "preferred_staff_id"], staff=[ANNA, BERT])
    assert not dead_references.orphaned(dead)
    dead_references.drop_references(step, dead)
    dropped = step.state
    assert (dropped.request.customer_id, dropped.request.preferred_staff_id, dropped.assigned_to) == (
        None,
        None,
        None,
    )
    assert dropped.status == CallbackStatus.PENDING
    assert dropped.request.service_id == 3
    assert [(e.escalated_from, e.escalated_to) for e in dropped.escalations] == [(None, None)]
    assert step.events[-1].type == "callback.reference_dropped"
    assert step.events[-1].payload == {
        "references": ["assigned_to", "customer_id", "preferred_staff_id"],
        "staff_ids": [str(ANNA), str(BERT)],
    }


def test_an_escalation_to_a_deleted_staff_member_keeps_its_number() -> None:
    state = opened()
    step = Step(state, "sla-clock", T0 + timedelta(hours=4))
    step.escalate(EscalationReason.SLA_BREACH, None, [StaffCandidate(id=ANNA, branch_id=7)])
    assert step.escalation is not None
    assert step.escalation.escalated_to == ANNA
    dead_references.drop_references(step, DeadReferences(fields=["assigned_to"], staff=[ANNA]))
    assert step.escalation.number == 2
    assert step.escalation.escalated_to is None
    assert step.state.assigned_to is None


def test_a_deleted_branch_ends_the_callback() -> None:
    step = Step(opened(), "anna", T0 + timedelta(hours=1))
    dead = DeadReferences(fields=["branch_id"])
    assert dead_references.orphaned(dead)
    dead_references.end_orphaned(step, dead)
    assert step.state.status == CallbackStatus.CANCELLED
    assert step.state.cancel_reason == "the callback's branch was deleted"
