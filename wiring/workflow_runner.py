"""The worker's workflow runner: unsandboxed, and lean with the protobuf messages it keeps.

Every cached workflow keeps, between its activations, a few protobuf messages the SDK no longer needs:
the last completion it sent, and sub-messages of the activations it received (the memo, an empty
`last_completion_result`, the deployment version). A protobuf sub-message keeps the whole arena of the
message it came from alive, so each cached callback held its first activation (input, memo, search
attributes, the create Update) and its last completion (the step's state) in memory, for as long as it
waits on its SLA. After each activation this runner gives the workflow its own small copies instead.

Two more per-instance costs are made lazy or shared: the instance's own `random.Random` (2.5 KiB of
Mersenne Twister state, which callback workflows never draw from) is created on first use, and the
signal and update handler tables, copied per instance so that handlers could be added at run time (our
workflows register theirs at definition time, workflows/staff_handlers.py), are the definition's own,
read-only: adding a handler at run time would fail loudly instead of changing every instance.

SDK internals: every attribute is looked up defensively, so an SDK that renames them only loses the saving.
"""

from __future__ import annotations

import dataclasses
import random
from types import MappingProxyType
from typing import Any, TypeVar

from google.protobuf.message import Message
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker._workflow_instance import _WorkflowInstanceImpl

M = TypeVar("M", bound=Message)
# Sub-messages of activations an instance keeps (each pins its activation's arena).
KEPT_MESSAGES = ("_last_completion_result", "_deployment_version_for_current_task")


def detached(message: M) -> M:
    """A copy with an arena of its own."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


class LazyRandom:
    """A `random.Random` made on first use, with the seed the SDK gave (or re-seeded) it."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._random: random.Random | None = None

    def seed(self, seed: int) -> None:
        self._seed = seed
        if self._random is not None:
            self._random.seed(seed)

    def __getattr__(self, name: str) -> Any:
        if self._random is None:
            self._random = random.Random(self._seed)
        return getattr(self._random, name)


class LeanWorkflowRunner(UnsandboxedWorkflowRunner):
    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _LeanInstance(det)  # type: ignore[abstract]


class _LeanInstance(_WorkflowInstanceImpl):
    _memo_detached = False

    def __init__(self, det: WorkflowInstanceDetails) -> None:
        super().__init__(det)
        state: dict[str, Any] = vars(self)
        if isinstance(state.get("_random"), random.Random):
            state["_random"] = LazyRandom(det.randomness_seed)
        defn = state.get("_defn")
        for name, shared in (("_signals", "signals"), ("_updates", "updates")):
            table = getattr(defn, shared, None)
            if isinstance(state.get(name), dict) and isinstance(table, dict) and state[name] == table:
                state[name] = MappingProxyType(table)

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = super().activate(act)
        state: dict[str, Any] = vars(self)
        if isinstance(state.get("_current_completion"), WorkflowActivationCompletion):
            # Sent to the server by now; whatever the next activation adds goes to its own completion.
            self._current_completion = WorkflowActivationCompletion()
        for name in KEPT_MESSAGES:
            if isinstance(state.get(name), Message):
                state[name] = detached(state[name])
        info = state.get("_info")
        if not self._memo_detached and info is not None and getattr(info, "raw_memo", None):
            self._info = dataclasses.replace(
                info, raw_memo={key: detached(value) for key, value in info.raw_memo.items()}
            )
            self._memo_detached = True
        return completion
