"""The staff actions, defined once: everything else about an action is derived from its row here.

- the workflow registers an Update (with a validator) and a Signal named `action` taking `command`
  (workflows/callback.py);
- `CallbackClient.act` / `.send` find the Update / Signal name from the command's type (starter/client.py);
- the API serves `POST /v1/callbacks/{id}/{path}` (api/routes_callbacks.py, body from api/action_bodies.py);
- the CLI offers `callbacks callbacks {verb}` (cli/callbacks.py), the console a button named `verb`;
- a refusal outside `allowed_from` names the current state (rules/transitions.py).

The names are public contracts: `action` is recorded in workflow histories (renaming it breaks replay of
running callbacks), `path` and `verb` are what API clients and scripts already call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from models.callbacks import (
    Assign,
    CallbackState,
    CallbackStatus,
    Cancel,
    ChangePriority,
    Complete,
    Escalate,
    MarkContacted,
    RecordAttempt,
    StaffAction,
    StaffCandidate,
    StaffCommand,
)
from rules import callback_machine as machine
from rules.callback_machine import StaffNeeded, Step

C = TypeVar("C", bound=StaffCommand)

_S = CallbackStatus
OPEN = frozenset({_S.PENDING, _S.ASSIGNED, _S.CONTACTED})
ASSIGNED_OR_CONTACTED = frozenset({_S.ASSIGNED, _S.CONTACTED})


@dataclass(frozen=True)
class StaffActionSpec(Generic[C]):
    """One staff action: its input, when it is allowed, what it does, and the names it goes by."""

    action: StaffAction
    command: type[C]
    allowed_from: frozenset[CallbackStatus]
    # The change to the state (rules/callback_machine.py); may raise StaffRefused.
    effect: Callable[[Step, C, Sequence[StaffCandidate]], None]
    path: str
    verb: str
    summary: str
    # The staff candidates the effect needs loaded first (None: none), decided before the effect runs.
    staff: Callable[[CallbackState, C], StaffNeeded | None] = machine.no_staff
    # What the command itself requires of the state beyond `allowed_from` (raises AlreadyTaken); checked
    # by the Update's validator and again, under the workflow's lock, when the action is applied.
    guard: Callable[[CallbackState, C], None] = machine.no_guard

    def allows(self, status: CallbackStatus) -> bool:
        return status in self.allowed_from

    def apply(self, state: CallbackState, command: C, now: datetime, staff: Sequence[StaffCandidate]) -> Step:
        """The action as a step on a copy of `state` (the caller persists it, then makes it current)."""
        self.guard(state, command)
        step = Step(state, actor=command.actor, now=now)
        self.effect(step, command, staff)
        return step


STAFF_ACTIONS: Mapping[StaffAction, StaffActionSpec[Any]] = {
    spec.action: spec
    for spec in (
        StaffActionSpec(
            action=StaffAction.ASSIGN,
            command=Assign,
            allowed_from=OPEN,
            effect=machine.assign,
            staff=machine.staff_to_assign,
            guard=machine.assign_guard,
            path="assign",
            verb="assign",
            summary="Assign the callback to a staff member (a staff key: to itself by default).",
        ),
        StaffActionSpec(
            action=StaffAction.MARK_CONTACTED,
            command=MarkContacted,
            allowed_from=frozenset({_S.ASSIGNED}),
            effect=machine.mark_contacted,
            path="contacted",
            verb="contacted",
            summary="The customer was reached.",
        ),
        StaffActionSpec(
            action=StaffAction.RECORD_ATTEMPT,
            command=RecordAttempt,
            allowed_from=ASSIGNED_OR_CONTACTED,
            effect=machine.record_attempt,
            staff=machine.staff_for_attempt,
            path="attempts",
            verb="attempt",
            summary="A failed attempt to reach the customer (every `max_contact_attempts`-th escalates).",
        ),
        StaffActionSpec(
            action=StaffAction.COMPLETE,
            command=Complete,
            allowed_from=ASSIGNED_OR_CONTACTED,
            effect=machine.complete,
            path="complete",
            verb="complete",
            summary="Close the callback with notes on what came of the call.",
        ),
        StaffActionSpec(
            action=StaffAction.CANCEL,
            command=Cancel,
            allowed_from=OPEN,
            effect=machine.cancel,
            path="cancel",
            verb="cancel",
            summary="Cancel the callback (nobody needs to call back).",
        ),
        StaffActionSpec(
            action=StaffAction.ESCALATE,
            command=Escalate,
            allowed_from=OPEN,
            effect=machine.escalate,
            staff=machine.staff_to_escalate,
            path="escalate",
            verb="escalate",
            summary="Escalate by hand (to another staff member; no cooldown).",
        ),
        StaffActionSpec(
            action=StaffAction.CHANGE_PRIORITY,
            command=ChangePriority,
            allowed_from=OPEN,
            effect=machine.change_priority,
            path="priority",
            verb="priority",
            summary="Change the priority (the SLA deadline is recomputed from the creation time).",
        ),
    )
}

BY_VERB: Mapping[str, StaffActionSpec[Any]] = {spec.verb: spec for spec in STAFF_ACTIONS.values()}
_BY_COMMAND: Mapping[type[StaffCommand], StaffActionSpec[Any]] = {
    spec.command: spec for spec in STAFF_ACTIONS.values()
}


def spec_of(command: StaffCommand) -> StaffActionSpec[Any]:
    """The action a command is the input of (each command model belongs to exactly one action)."""
    return _BY_COMMAND[type(command)]
