"""Messages of the appointment change (cancel or reschedule) as they cross the client → workflow →
activity borders. Free of I/O imports: the workflow sandbox loads this module.

A change is identified by its company and request id: the workflow id is derived from both, and the
modification row is unique on them, so a retried request never changes an appointment twice.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from models.calcom import Booking
from models.policies import ModificationType, PolicyResult
from models.workflow_ids import tenant_workflow_id

# Same bound as `appointment_modifications.request_id`; the characters keep the workflow id readable.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"


def change_workflow_id(company_id: int, request_id: str) -> str:
    """Request ids are unique per company (as in the database), so the company is part of the id:
    `c<company>.appointment-change-<request id>` (models/workflow_ids.py), which also makes the payload
    codec encrypt the change under the company's key."""
    return tenant_workflow_id(company_id, f"appointment-change-{request_id}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActorType(StrEnum):
    """Who asked for a change: stored as `modified_by_type` (the seed's polymorphic `modified_by`)."""

    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"
    SERVICE = "service"  # an integration acting through a service API key (phone agent, booking product)
    SYSTEM = "system"


class Actor(_Frozen):
    type: ActorType = ActorType.SYSTEM
    id: str | None = Field(default=None, min_length=1, max_length=64)


class AppointmentChangeRequest(_Frozen):
    """A cancel, or a reschedule to `new_start`: the Update `change` of `AppointmentWorkflow` (and the input
    of the older `AppointmentChangeWorkflow`).

    `requested_at`: when the request arrived (taken by the client or the API, not by the workflow). The
    policy is decided at that instant, so a request retried minutes later, after its answer was lost,
    gets the same decision and the same fee. Requests from before this field carry none (the workflow
    decides at its own time then)."""

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    company_id: int = Field(gt=0)
    appointment_id: int = Field(gt=0)
    change: ModificationType
    new_start: AwareDatetime | None = None
    reason: str | None = Field(default=None, max_length=1000)
    modified_by: Actor = Field(default_factory=Actor)
    requested_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _new_start_only_for_reschedules(self) -> AppointmentChangeRequest:
        if self.change is ModificationType.RESCHEDULE and self.new_start is None:
            raise ValueError("a reschedule needs new_start")
        if self.change is ModificationType.CANCEL and self.new_start is not None:
            raise ValueError("a cancellation takes no new_start")
        return self

    @property
    def workflow_id(self) -> str:
        return change_workflow_id(self.company_id, self.request_id)

    @property
    def fingerprint(self) -> str:
        """What makes two requests with one request id the same request: the appointment, the change and
        the new time (not who sent it, when, or the reason given, which a resend may leave out). A reused
        id with another fingerprint is refused, never answered with the other request's outcome."""
        new_start = self.new_start.astimezone(UTC).isoformat() if self.new_start else ""
        body = "\x1f".join((str(self.appointment_id), self.change.value, new_start))
        return hashlib.sha256(body.encode()).hexdigest()

    def describe(self) -> str:
        """The change in words, for messages: "reschedule of appointment 7 to 2030-03-05T09:30:00+00:00"."""
        moved = f" to {self.new_start.isoformat()}" if self.new_start else ""
        return f"{self.change.value} of appointment {self.appointment_id}{moved}"


class AppointmentChangePlan(_Frozen):
    """What the workflow needs before it acts: the policy decision and the appointment as it is now."""

    policy: PolicyResult
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    status: str
    calcom_booking_uid: str | None = None
    # Who the appointment concerns, for the notification of an applied change. Optional: plans recorded
    # in histories before the notification step existed carry none of them.
    branch_id: int | None = None
    service_id: int | None = None
    staff_id: uuid.UUID | None = None
    customer_id: int | None = None
    customer_name: str | None = None


class RecordAppointmentChange(_Frozen):
    """Activity input: write the modification and update the appointment, in one transaction.

    `new_start`/`new_end`/`new_booking_uid` describe a reschedule as Cal.com answered it; without Cal.com
    `new_end` is left out and the appointment keeps its length."""

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    company_id: int = Field(gt=0)
    appointment_id: int = Field(gt=0)
    change: ModificationType
    policy: PolicyResult
    reason: str | None = None
    modified_by: Actor = Field(default_factory=Actor)
    new_start: AwareDatetime | None = None
    new_end: AwareDatetime | None = None
    new_booking_uid: str | None = None
    workflow_id: str | None = None

    @classmethod
    def of(
        cls,
        request: AppointmentChangeRequest,
        plan: AppointmentChangePlan,
        booking: Booking | None,
        workflow_id: str | None,
    ) -> RecordAppointmentChange:
        """The record of `request` as decided (`plan`) and as Cal.com answered (`booking`; None: no Cal.com
        booking, a reschedule then keeps the appointment's length)."""
        moved = request.change is ModificationType.RESCHEDULE
        return cls(
            request_id=request.request_id,
            company_id=request.company_id,
            appointment_id=request.appointment_id,
            change=request.change,
            policy=plan.policy,
            reason=request.reason,
            modified_by=request.modified_by,
            new_start=(booking.start if booking is not None else request.new_start) if moved else None,
            new_end=booking.end if moved and booking is not None else None,
            new_booking_uid=booking.uid if moved and booking is not None else None,
            workflow_id=workflow_id,
        )


class RecordedChange(_Frozen):
    """The appointment after the record. `created` False: this request had been recorded before (a retry).
    `conflict` set: another request closed the appointment first; nothing was written for this one."""

    modification_id: int | None
    created: bool
    conflict: str | None = None
    status: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    calcom_booking_uid: str | None = None


class ChangeStatus(StrEnum):
    APPLIED = "applied"  # Cal.com (when the appointment is booked there) and the database agree
    DENIED = "denied"  # the policy said no: nothing was written, Cal.com was not called
    REFUSED = "refused"  # Cal.com refused it, or the request cannot apply: nothing was written
    NOT_FOUND = "not_found"  # no such appointment in this company


class AppointmentChangeOutcome(_Frozen):
    """What a change request came to. `policy` is the decision it was made under (None when the
    appointment was not found); `reason` says why it was denied or refused; the times and the booking uid
    are the appointment's after the change."""

    request_id: str
    company_id: int
    appointment_id: int
    change: ModificationType
    status: ChangeStatus
    decided_at: datetime
    reason: str | None = None
    error_type: str | None = None
    policy: PolicyResult | None = None
    fee_charged: Decimal | None = None
    modification_id: int | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    calcom_booking_uid: str | None = None

    @property
    def applied(self) -> bool:
        return self.status is ChangeStatus.APPLIED

    def answers(self, request: AppointmentChangeRequest) -> bool:
        """Whether this outcome belongs to `request` (a request id reused for another change does not)."""
        mine = (self.company_id, self.appointment_id, self.change)
        return mine == (request.company_id, request.appointment_id, request.change)
