"""The staff actions' Update, validator and Signal handlers of CallbackWorkflow, made from the table.

One function per row of rules/staff_actions.py, typed with the row's command model, put on the workflow
class before `@workflow.defn` reads it: to the SDK they are ordinary decorated methods, so a new row needs
no edit here or in the workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.callbacks import CallbackState, StaffCommand
    from rules.staff_actions import STAFF_ACTIONS, StaffActionSpec

W = TypeVar("W", bound=type)


def _handlers(
    spec: StaffActionSpec[Any],
) -> tuple[Callable[..., Any], Callable[..., None], Callable[..., Any]]:
    """The Update, its validator and the Signal of one staff action, typed with the action's command model
    so the data converter hands them that model (as the written-out methods were)."""

    async def update(self: Any, command: StaffCommand) -> CallbackState:
        state: CallbackState = await self._perform(spec, command)
        return state

    def validator(self: Any, command: StaffCommand) -> None:
        self._validate(spec, command)

    async def signal(self: Any, command: StaffCommand) -> None:
        await self._from_signal(spec, command)

    name = spec.action.value
    for fn, suffix, returns in (
        (update, "", CallbackState),
        (validator, "_validator", None),
        (signal, "_signal", None),
    ):
        fn.__name__ = f"{name}{suffix}"
        fn.__qualname__ = f"CallbackWorkflow.{name}{suffix}"
        fn.__annotations__ = {"command": spec.command, "return": returns}
    return update, validator, signal


def with_staff_actions(cls: W) -> W:
    """Give the workflow an Update (with validator) and a Signal per row of the staff-action table.

    They are put on the class before `@workflow.defn` reads it, so to the SDK they are ordinary
    `@workflow.update(name=...)` / `@workflow.signal(name=...)` methods with the same names, argument types
    and handling order as when they were written out, and recorded histories replay. (Registering them at
    run time with `workflow.set_update_handler` / `set_signal_handler` from `__init__` would hold back a
    Signal of the first workflow task until after that task's Updates: a different order on replay.)
    """
    for spec in STAFF_ACTIONS.values():
        update, validator, signal = _handlers(spec)
        name = spec.action.value
        registered = workflow.update(name=name, description=spec.summary)(update)
        registered.validator(validator)
        setattr(cls, name, registered)
        setattr(cls, f"{name}_signal", workflow.signal(name=name, description=spec.summary)(signal))
    return cls
