"""The worker's workflow runner: unsandboxed, and lean with the protobuf messages it keeps.

Every cached workflow keeps, between its activations, a few protobuf messages the SDK no longer needs:
the last completion it sent, and sub-messages of the activations it received (the memo, an empty
`last_completion_result`, the deployment version). A protobuf sub-message keeps the whole arena of the
message it came from alive, so each cached callback held its first activation (input, memo, search
attributes, the create Update) and its last completion (the step's state) in memory, for as long as it
waits on its SLA. After each activation this runner gives the workflow its own small copies instead.

SDK internals: every attribute is looked up defensively, so an SDK that renames them only loses the saving.
"""

from __future__ import annotations

import dataclasses
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


class LeanWorkflowRunner(UnsandboxedWorkflowRunner):
    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _LeanInstance(det)  # type: ignore[abstract]


class _LeanInstance(_WorkflowInstanceImpl):
    _memo_detached = False

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
