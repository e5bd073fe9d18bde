"""Which staff action is allowed in which state (the rows of rules/staff_actions.py), and the refusal, which
names the current state so a person reading it knows why (the API answers 409 with this text)."""

from __future__ import annotations

from collections.abc import Mapping

from models.callbacks import CallbackStatus, StaffAction
from rules.staff_actions import STAFF_ACTIONS

ALLOWED_FROM: Mapping[StaffAction, frozenset[CallbackStatus]] = {
    action: spec.allowed_from for action, spec in STAFF_ACTIONS.items()
}


class TransitionRefused(ValueError):
    """A staff action that does not fit the callback's current state (the API answers 409)."""

    def __init__(self, action: StaffAction, status: CallbackStatus) -> None:
        allowed = ", ".join(sorted(ALLOWED_FROM[action]))
        super().__init__(
            f"cannot {action.value.replace('_', ' ')}: the callback is {status.value} "
            f"(allowed from: {allowed})"
        )
        self.action = action
        self.status = status


def check_allowed(action: StaffAction, status: CallbackStatus) -> None:
    if status not in ALLOWED_FROM[action]:
        raise TransitionRefused(action, status)
