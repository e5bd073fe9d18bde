"""Erasure of a customer's personal data (GDPR Art. 17) from a callback: what the workflow blanks in its
state, and what is blanked in the stored audit trail. Pure: the workflow and store/erasure.py apply it.

Personal data of a callback: the customer's name, phone number and email, the request's notes and
metadata, and everything staff wrote about the contact (attempt notes, completion notes, the cancel
reason, manual escalation details). Ids, times, states and priorities stay: the callback keeps running
(its SLA clock, escalations and reports are not personal data).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.callbacks import ERASED, CallbackState
from rules.callback_machine import Step

ERASED_EVENT = "callback.personal_data_erased"

# Free text in the audit events, per event type: written by staff or the customer, so possibly personal.
FREE_TEXT_KEYS: dict[str, tuple[str, ...]] = {
    "callback.attempt_failed": ("notes",),
    "callback.completed": ("notes",),
    "callback.cancelled": ("reason",),
    "callback.escalated": ("details",),
}
# Keys that hold personal data in any event, should an event ever carry them.
PERSONAL_KEYS = ("customer_name", "phone_number", "phone", "email", "notes")


def has_personal_data(state: CallbackState) -> bool:
    request = state.request
    return (
        request.customer_name != ERASED
        or request.phone_number != ERASED
        or request.email is not None
        or request.notes is not None
        or bool(request.metadata)
        or state.completion_notes is not None
        or state.cancel_reason is not None
        or any(attempt.notes is not None for attempt in state.attempts)
        or any(escalation.details is not None for escalation in state.escalations)
    )


def erase_personal_data(state: CallbackState, actor: str, now: datetime) -> Step:
    """The step that blanks the personal fields; the callback's status, clock and staff stay as they are."""
    step = Step(state, actor=actor, now=now)
    erased = step.state
    erased.request = erased.request.model_copy(
        update={
            "customer_name": ERASED,
            "phone_number": ERASED,
            "email": None,
            "notes": None,
            "metadata": {},
        }
    )
    erased.completion_notes = None
    erased.cancel_reason = None
    erased.attempts = [attempt.model_copy(update={"notes": None}) for attempt in erased.attempts]
    erased.escalations = [
        escalation.model_copy(update={"details": None}) for escalation in erased.escalations
    ]
    step.emit("personal_data_erased")
    return step


def scrub_event_payload(event_type: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The payload with its personal values set to None; None when there is nothing to blank."""
    keys = set(FREE_TEXT_KEYS.get(event_type, ())) | set(PERSONAL_KEYS)
    if not any(payload.get(key) is not None for key in keys):
        return None
    return {key: None if key in keys else value for key, value in payload.items()}
