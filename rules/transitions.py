"""Which staff action is allowed in which state (DESIGN §3.2). A refusal names the current state."""

from __future__ import annotations

from models.callbacks import CallbackStatus, StaffAction

_S = CallbackStatus
_OPEN = frozenset({_S.PENDING, _S.ASSIGNED, _S.CONTACTED})

ALLOWED_FROM: dict[StaffAction, frozenset[CallbackStatus]] = {
    StaffAction.ASSIGN: _OPEN,
    StaffAction.MARK_CONTACTED: frozenset({_S.ASSIGNED}),
    StaffAction.RECORD_ATTEMPT: frozenset({_S.ASSIGNED, _S.CONTACTED}),
    StaffAction.COMPLETE: frozenset({_S.ASSIGNED, _S.CONTACTED}),
    StaffAction.CANCEL: _OPEN,
    StaffAction.ESCALATE: _OPEN,
    StaffAction.CHANGE_PRIORITY: _OPEN,
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


def status_after_assignment(status: CallbackStatus) -> CallbackStatus:
    """A pending callback becomes assigned; an assigned or contacted one keeps its progress."""
    return CallbackStatus.ASSIGNED if status == CallbackStatus.PENDING else status
