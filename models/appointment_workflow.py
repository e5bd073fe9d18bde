"""Messages of `AppointmentWorkflow`, the one workflow per appointment that applies its cancel and
reschedule requests one at a time (workflows/appointment.py), and of the activities it runs.

Free of I/O imports: the workflow sandbox loads this module.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from models.appointments import (
    AppointmentChangeOutcome,
    AppointmentChangePlan,
    AppointmentChangeRequest,
    RecordedChange,
)
from models.calcom import Booking
from models.workflow_ids import tenant_workflow_id

APPOINTMENT_BASE_PREFIX = "appointment-"


def appointment_workflow_id(company_id: int, appointment_id: int) -> str:
    """`c<company>.appointment-<appointment id>` (models/workflow_ids.py): every change of one appointment
    lands on the same workflow, which applies them in order, and the codec encrypts it with the company's
    key."""
    return tenant_workflow_id(company_id, f"{APPOINTMENT_BASE_PREFIX}{appointment_id}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AppointmentWorkflowInput(_Frozen):
    """What a run starts with. A run continued as new carries the requests it had not settled with Cal.com
    yet (`unsettled`): they are settled before any new request of the appointment is applied."""

    company_id: int = Field(gt=0)
    appointment_id: int = Field(gt=0)
    unsettled: list[AppointmentChangeRequest] = Field(default_factory=list)


class BeginStep(StrEnum):
    ACT = "act"  # recorded as intended just now: call Cal.com (when booked there), then finish
    RESUME = "resume"  # recorded before and not settled: read Cal.com back first, then finish
    ANSWERED = "answered"  # settled (now: denied, refused, not found; or before): `outcome` is the answer


class BeginChange(_Frozen):
    request: AppointmentChangeRequest
    workflow_id: str


class BegunChange(_Frozen):
    """`reused` set: the request id was used for a different change; the text says which (nothing else is
    set then)."""

    step: BeginStep
    plan: AppointmentChangePlan | None = None
    outcome: AppointmentChangeOutcome | None = None
    reused: str | None = None


class FinishChange(_Frozen):
    """Record an intended change once Cal.com made it (`booking`: Cal.com's answer; None when the
    appointment is not booked there) and settle the request with its outcome, in one transaction."""

    request: AppointmentChangeRequest
    plan: AppointmentChangePlan
    booking: Booking | None = None
    workflow_id: str


class FinishedChange(_Frozen):
    outcome: AppointmentChangeOutcome
    recorded: RecordedChange


class SettleChange(_Frozen):
    """Settle a request that ended without a change (Cal.com refused, the appointment vanished): its
    outcome is stored and the quota it held is free again."""

    outcome: AppointmentChangeOutcome
