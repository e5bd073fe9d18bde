"""Messages of the callback lifecycle: what crosses the client → workflow → activity borders.

Every model here travels through Temporal's pydantic data converter, so it must stay deterministic to
(de)serialise and must not import anything with I/O.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.calcom import Slot
from models.calendars import BusinessCalendarSpec
from models.dial_window import DialWindow
from models.phones import ERASED as ERASED
from models.phones import mask_phone as mask_phone
from models.phones import normalize_phone as normalize_phone

# The callback workflow ids live beside the tenant id convention; imported from here by most callers.
from models.workflow_ids import CALLBACK_BASE_PREFIX as CALLBACK_BASE_PREFIX
from models.workflow_ids import callback_base_id as callback_base_id
from models.workflow_ids import callback_id_of_workflow as callback_id_of_workflow
from models.workflow_ids import callback_workflow_id as callback_workflow_id
from models.workflow_ids import stored_callback_workflow_id as stored_callback_workflow_id


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"


class CallbackStatus(StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    CONTACTED = "contacted"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({CallbackStatus.COMPLETED, CallbackStatus.CANCELLED, CallbackStatus.EXPIRED})


class AttemptOutcome(StrEnum):
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    WRONG_NUMBER = "wrong_number"


class EscalationReason(StrEnum):
    SLA_BREACH = "sla_breach"
    MULTIPLE_ATTEMPTS_FAILED = "multiple_attempts_failed"
    MANUAL = "manual"


class StaffAction(StrEnum):
    """The staff actions; each is an Update and a Signal of the same name (rules/staff_actions.py)."""

    ASSIGN = "assign"
    MARK_CONTACTED = "mark_contacted"
    RECORD_ATTEMPT = "record_attempt"
    COMPLETE = "complete"
    CANCEL = "cancel"
    ESCALATE = "escalate"
    CHANGE_PRIORITY = "change_priority"


class SlaClock(StrEnum):
    """How the SLA clock counts: every hour (`calendar`) or only the branch's open hours."""

    CALENDAR = "calendar"
    BUSINESS_HOURS = "business_hours"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallbackSettings(Frozen):
    """The rules one callback runs under: settings defaults merged with any `callback` policy."""

    sla_hours: dict[Priority, float]
    auto_assign: bool = True
    escalation_cooldown_hours: float = Field(gt=0)
    max_contact_attempts: int = Field(ge=1)
    max_escalations: int = Field(ge=0)
    sla_clock: SlaClock = SlaClock.CALENDAR


class NewCallback(Frozen):
    """A request to be called back, as a service or a person submits it."""

    company_id: int = Field(gt=0)
    branch_id: int = Field(gt=0)
    service_id: int | None = Field(default=None, gt=0)
    customer_id: int | None = Field(default=None, gt=0)
    customer_name: str = Field(min_length=1, max_length=255)
    phone_number: str = Field(max_length=32)
    email: str | None = Field(default=None, max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    priority: Priority = Priority.NORMAL
    preferred_staff_id: UUID | None = None
    preferred_time_window: dict[str, Any] | None = None
    notes: str | None = Field(default=None, max_length=5000)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("customer_name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("must not be blank")
        return stripped

    @field_validator("phone_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        # An erased callback keeps its (required) number field, blanked to the marker.
        return value if value == ERASED else normalize_phone(value)


class StaffCandidate(Frozen):
    """A staff member as the assignment rules see them: who, where, and how busy."""

    id: UUID
    branch_id: int | None
    active: bool = True
    linked_to_service: bool = False
    open_callbacks: int = Field(default=0, ge=0)
    max_open_callbacks: int | None = None
    # Their shift at the moment the candidates were loaded (rules/shifts.py). The defaults are what
    # histories recorded before shifts existed mean: always on shift, never away.
    on_shift: bool = True
    absent: bool = False
    next_on_shift_at: datetime | None = None
    away_from: datetime | None = None

    @property
    def has_capacity(self) -> bool:
        return self.max_open_callbacks is None or self.open_callbacks < self.max_open_callbacks


class ContactAttempt(Frozen):
    number: int
    outcome: AttemptOutcome
    notes: str | None = None
    staff_id: UUID | None = None
    at: datetime


class Escalation(Frozen):
    number: int
    reason: EscalationReason
    details: str | None = None
    escalated_from: UUID | None = None
    escalated_to: UUID | None = None
    at: datetime


class CallbackEvent(Frozen):
    """One entry of the append-only audit trail (`callback_events`); `seq` makes re-writes idempotent."""

    seq: int
    type: str
    payload: dict[str, Any] = Field(default_factory=dict)
    actor: str = "system"
    at: datetime


class CallbackState(BaseModel):
    """The whole state of one callback: the `state` query answers it, activities persist it."""

    model_config = ConfigDict(extra="forbid")

    id: UUID
    request: NewCallback
    settings: CallbackSettings
    status: CallbackStatus = CallbackStatus.PENDING
    priority: Priority
    created_at: datetime
    expires_at: datetime
    assigned_to: UUID | None = None
    previous_assignees: list[UUID] = Field(default_factory=list)
    assigned_at: datetime | None = None
    contacted_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    expired_at: datetime | None = None
    completion_notes: str | None = None
    cancel_reason: str | None = None
    attempts: list[ContactAttempt] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    warnings_sent: list[int] = Field(default_factory=list)
    # Free Cal.com slots of the requested service, found right after creation (None: not looked up).
    suggested_slots: list[Slot] | None = None
    # The branch's calendar (None: no opening hours, always open), which a business-hours SLA counts in.
    calendar: BusinessCalendarSpec | None = None
    # When the customer may be called; callable_now / next_callable_at as of the last step.
    dial_window: DialWindow | None = None
    callable_now: bool | None = None
    next_callable_at: datetime | None = None
    # Nobody on shift: (re)assign at this moment, resp. hold the due breach escalation until then.
    assign_at: datetime | None = None
    escalation_waits_until: datetime | None = None
    # The assignee's next absence starts here: the callback is handed on then.
    assignee_away_at: datetime | None = None
    event_count: int = 0
    version: int = 0

    @property
    def workflow_id(self) -> str:
        """The id a workflow started for this state gets (a callback started before tenant ids runs under
        its row's stored id, see `stored_callback_workflow_id`)."""
        return callback_workflow_id(self.request.company_id, self.id)

    @property
    def contact_attempts(self) -> int:
        return len(self.attempts)

    @property
    def escalation_count(self) -> int:
        return len(self.escalations)


# --- staff actions (Update and Signal arguments) -------------------------------------------------


class StaffCommand(Frozen):
    """The argument of a staff action's Update and Signal; `actor` lands in the audit trail."""

    actor: str = "system"


class Assign(StaffCommand):
    staff_id: UUID
    # "Take it": only while nobody else holds the callback (two clicks at once: one wins, one is refused).
    if_unassigned: bool = False


class MarkContacted(StaffCommand):
    pass


class RecordAttempt(StaffCommand):
    outcome: AttemptOutcome
    notes: str | None = Field(default=None, max_length=5000)


class Complete(StaffCommand):
    notes: str = Field(max_length=5000)

    @field_validator("notes")
    @classmethod
    def _required(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("completion notes are required")
        return value.strip()


class Cancel(StaffCommand):
    reason: str | None = Field(default=None, max_length=2000)


class Escalate(StaffCommand):
    reason: str = Field(min_length=1, max_length=255)
    details: str | None = Field(default=None, max_length=5000)


class ChangePriority(StaffCommand):
    priority: Priority


class StaffDeactivated(Frozen):
    """The Signal `staff_deactivated`: a staff member left (was deactivated). A callback they hold is
    handed to someone else by its own workflow, or left pending when nobody else can take it."""

    staff_id: UUID
    actor: str = "system"


STAFF_DEACTIVATED_SIGNAL = "staff_deactivated"


class ErasePersonalData(Frozen):
    """The argument of the `erase_personal_data` Update: blank the customer's personal data in the state."""

    actor: str = "system"


class DeadReferences(Frozen):
    """What a write found deleted under the callback (a row removed by SQL outside the API): the fields
    whose referenced row is gone (`customer_id`, `service_id`, `preferred_staff_id`, `assigned_to`,
    `branch_id`, `company_id`) and the staff ids among them."""

    fields: list[str] = Field(default_factory=list)
    staff: list[UUID] = Field(default_factory=list)


# --- activity messages --------------------------------------------------------------------------


class PrepareCallback(Frozen):
    callback_id: UUID
    request: NewCallback
    # The workflow's time, for the staff's shifts (None from workflows older than shifts: the clock's).
    at: datetime | None = None


class PreparedCallback(Frozen):
    """What the workflow needs from the database before it can decide anything."""

    settings: CallbackSettings
    candidates: list[StaffCandidate]
    # The requested service is bookable through Cal.com: worth suggesting free slots for.
    bookable: bool = False
    calendar: BusinessCalendarSpec | None = None
    dial_window: DialWindow | None = None
    # The moment a starter prepared it (activities/preparation.py): the run takes it as the moment of its
    # first step, so that the starter, deciding the same step from the same inputs, starts the workflow
    # with that step's search attributes and the step upserts none (rules/first_step.py).
    at: datetime | None = None


class LoadCandidates(Frozen):
    company_id: int
    branch_id: int
    service_id: int | None
    include: list[UUID] = Field(default_factory=list)
    at: datetime | None = None


class Transition(Frozen):
    """One persisted step: the state after it, the events it produced, the escalation it made (if any)."""

    state: CallbackState
    events: list[CallbackEvent]
    escalation: Escalation | None = None
    # A staff member the rules picked: the write claims a place within their `max_open_callbacks`, or
    # fails with `CapacityFull` when concurrent writes took the last one first.
    claim: UUID | None = None
    # The write also puts the step's notifiable events into the notification outbox (hot-path-v1); runs
    # recorded before that start their notifications from the workflow instead.
    notify: bool = False


# The generation new callback workflows are started with (CallbackWorkflowInput.generation).
GENERATION = 1


class CallbackWorkflowInput(Frozen):
    callback_id: UUID
    request: NewCallback
    # A random token of the call that started the workflow: a later call with the same idempotency key
    # brings another token and so learns that it found an existing callback instead of creating one.
    request_token: str = ""
    # The state the run begins from, already in PostgreSQL: what a run continued as new carries over,
    # what the reconciliation sweep read from a row, or the first step the API wrote (starter/opening.py).
    carried_state: CallbackState | None = None
    # Set by the API's start of a callback it opened itself, for a bookable service: the run looks for
    # free slots to suggest, as a run that opens its callback does.
    suggest_slots: bool = False
    # The code generation the workflow was started with (GENERATION): a run of generation 1 takes every
    # path its patches guard without recording their markers, each an event of its history and memory of
    # every cached workflow. Runs started before (0) ask `workflow.patched` as they always did.
    generation: int = 0
    # What the starter read from the directory just before the start (activities/preparation.py, the API
    # does): the run decides its first step from it instead of running its own prepare step. None: the
    # run prepares itself (other starters, runs started before).
    prepared: PreparedCallback | None = None


class CreatedCallback(Frozen):
    state: CallbackState
    created: bool
