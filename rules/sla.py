"""The SLA clock: when a callback is due, when to warn, when to escalate and when to give up.

Everything is derived from the callback's state, never stored twice: the workflow asks `next_deadline`
after every change and sleeps until then, so a priority change simply moves the next deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from models.callbacks import CallbackSettings, CallbackState, EscalationReason, Priority

WARNING_PERCENTS = (50, 75)


def sla_deadline(created_at: datetime, priority: Priority, settings: CallbackSettings) -> datetime:
    """`expires_at`: created_at plus the SLA hours of the priority (retroactive on a priority change)."""
    return created_at + timedelta(hours=settings.sla_hours[priority])


def warning_time(state: CallbackState, percent: int) -> datetime:
    return state.created_at + (state.expires_at - state.created_at) * (percent / 100)


class DueKind(StrEnum):
    WARNING = "warning"
    ESCALATION = "escalation"
    EXPIRY = "expiry"


@dataclass(frozen=True)
class Deadline:
    kind: DueKind
    at: datetime
    warning_percent: int | None = None


def _breach_escalations(state: CallbackState) -> int:
    return sum(1 for e in state.escalations if e.reason == EscalationReason.SLA_BREACH)


def next_deadline(state: CallbackState, now: datetime) -> Deadline | None:
    """The next moment the clock must act on its own, or None when the callback is finished.

    Breach escalations come at `expires_at`, then one cooldown after the previous escalation of any kind,
    up to `max_escalations`; one cooldown after the last allowed one the callback expires. A normal
    callback (24 h SLA, 4 h cooldown, 3 escalations) therefore escalates at 24, 28 and 32 h and expires
    at 36 h. Unsent warnings (50 % and 75 % of the SLA) come first, unless the SLA is already breached
    (a late warning after a priority change would only be noise).
    """
    if state.status.is_terminal:
        return None
    cooldown = timedelta(hours=state.settings.escalation_cooldown_hours)
    last_escalation = state.escalations[-1].at if state.escalations else None
    if _breach_escalations(state) < state.settings.max_escalations:
        due_at = state.expires_at
        if last_escalation is not None:
            due_at = max(due_at, last_escalation + cooldown)
        action = Deadline(DueKind.ESCALATION, due_at)
    elif last_escalation is None:  # max_escalations == 0: expire at the deadline itself
        action = Deadline(DueKind.EXPIRY, state.expires_at)
    else:
        action = Deadline(DueKind.EXPIRY, last_escalation + cooldown)

    if now < state.expires_at:
        for percent in WARNING_PERCENTS:
            at = warning_time(state, percent)
            if percent not in state.warnings_sent and at <= action.at:
                return Deadline(DueKind.WARNING, at, warning_percent=percent)
    return action


def is_overdue(state: CallbackState, now: datetime) -> bool:
    return not state.status.is_terminal and now >= state.expires_at
