"""What the HTTP API accepts and answers.

Input safety lives here, in one place: every body refuses unknown fields, text is trimmed, control
characters are refused (they break terminals, CSV exports and log lines, and nobody types them), lengths
are bounded, and the free-form JSON fields are size- and depth-limited before anything reaches a workflow.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api.json_types import json_types
from api.params import MAX_ID
from api.sla_schemas import ClockCompliance, DialWindowOut, StuckOut
from api.text import EmailText, MultiLine, RequiredLine, RequiredText, multi_line
from models.callbacks import AttemptOutcome, CallbackStatus, Priority, SlaClock
from models.notifications import Channel, DeliveryRecord

METADATA_MAX_BYTES = 8 * 1024
METADATA_MAX_KEYS = 50
METADATA_MAX_DEPTH = 4


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _walk_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_walk_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _walk_strings(v)]
    return []


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > METADATA_MAX_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {METADATA_MAX_BYTES} bytes are allowed")
    if len(value) > METADATA_MAX_KEYS:
        raise ValueError(f"has {len(value)} keys; at most {METADATA_MAX_KEYS} are allowed")
    if _depth(value) > METADATA_MAX_DEPTH:
        raise ValueError(f"nests deeper than {METADATA_MAX_DEPTH} levels")
    for text in _walk_strings(value):
        multi_line(text)
    return value


def _not_null(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Fields of `not_null` may be left out of a PATCH but not sent as null: their schema says so."""
    for name in getattr(model, "not_null", ()):
        field = schema.get("properties", {}).get(name, {})
        field.pop("default", None)  # "left out" is not null: the null default is no value of the field
        options = [option for option in field.pop("anyOf", []) if option.get("type") != "null"]
        if len(options) == 1:
            field.update(options[0])
        elif options:
            field["anyOf"] = options


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000, json_schema_extra=_not_null)
    # Optional fields that must not be null when sent (a PATCH leaves them out to keep them).
    not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _json_types(cls, data: Any, info: ValidationInfo) -> Any:
        return json_types(cls, data, info)


class PreferredTimeWindow(Body):
    """When the customer would like to be called (also the window suggested slots are searched in)."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> PreferredTimeWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > timedelta(days=90):
            raise ValueError("the window may span at most 90 days")
        return self


class CreateCallback(Body):
    company_id: int | None = Field(default=None, gt=0, le=MAX_ID, description="super_admin keys only")
    branch_id: int = Field(gt=0, le=MAX_ID)
    service_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    customer_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    customer_name: RequiredLine = Field(max_length=255)
    phone_number: RequiredLine = Field(
        max_length=32, description="international (+49 30 …) or national in the branch's country"
    )
    email: EmailText | None = Field(default=None, max_length=255)
    priority: Priority = Priority.NORMAL
    preferred_staff_id: uuid.UUID | None = None
    preferred_time_window: PreferredTimeWindow | None = None
    notes: MultiLine | None = Field(default=None, max_length=5000)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"free-form JSON object, at most {METADATA_MAX_BYTES} bytes, {METADATA_MAX_KEYS} keys",
    )

    @field_validator("metadata")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_metadata(value)


class AssignBody(Body):
    staff_id: uuid.UUID | None = Field(default=None, description="default: the staff key's own staff member")
    # "Take it": refused (409) when someone else already holds it, so of two people one gets it.
    if_unassigned: bool = Field(default=False, description='"take it": 409 when someone else holds it')


class AttemptBody(Body):
    outcome: AttemptOutcome
    notes: MultiLine | None = Field(default=None, max_length=5000)


class CompleteBody(Body):
    notes: RequiredText = Field(max_length=5000, description="what came of the call")


class CancelBody(Body):
    reason: MultiLine | None = Field(default=None, max_length=2000)


class EscalateBody(Body):
    reason: RequiredLine = Field(max_length=255)
    details: MultiLine | None = Field(default=None, max_length=5000)


class PriorityBody(Body):
    priority: Priority


class BulkIds(Body):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=100, json_schema_extra={"uniqueItems": True})

    @field_validator("ids")
    @classmethod
    def _unique(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(value)) != len(value):
            raise ValueError("lists an id more than once")
        return value


class BulkAssignBody(BulkIds):
    staff_id: uuid.UUID | None = None


class BulkCompleteBody(BulkIds):
    notes: RequiredText = Field(max_length=5000)


class PolicyBody(Body):
    config: dict[str, Any]


# --- responses -----------------------------------------------------------------------------------


class CallbackOut(BaseModel):
    id: uuid.UUID
    company_id: int
    branch_id: int
    branch_name: str | None
    service_id: int | None
    service_name: str | None
    customer_id: int | None
    customer_name: str
    phone_number: str
    email: str | None
    priority: Priority
    status: CallbackStatus
    assigned_to: uuid.UUID | None
    assigned_to_name: str | None
    preferred_staff_id: uuid.UUID | None
    preferred_time_window: dict[str, Any] | None
    notes: str | None
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    assigned_at: datetime | None
    contacted_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None
    expires_at: datetime = Field(description="the SLA deadline: the real instant, in either clock mode")
    overdue: bool
    sla_clock: SlaClock = Field(description="calendar: every hour counts; business_hours: open hours only")
    callable_now: bool | None = Field(
        description="inside the customer's dial window now (null: finished, or made before dial windows)"
    )
    next_callable_at: datetime | None = Field(description="now when callable now, else when next")
    dial_window: DialWindowOut | None
    completion_notes: str | None
    cancel_reason: str | None
    contact_attempts: int
    escalation_count: int
    deleted_at: datetime | None
    version: int
    stuck: StuckOut | None = Field(description="a database step keeps failing (null: all is well)")


class CallbackPage(BaseModel):
    items: list[CallbackOut]
    total: int
    page: int
    page_size: int


class CreatedOut(CallbackOut):
    created: bool


class EscalationOut(BaseModel):
    sequence: int
    reason: str
    details: str | None
    escalated_from: uuid.UUID | None
    escalated_to: uuid.UUID | None
    escalated_at: datetime
    resolved_at: datetime | None


class AttemptOut(BaseModel):
    number: int
    outcome: str
    notes: str | None
    actor: str
    at: datetime


class EventOut(BaseModel):
    seq: int
    type: str
    actor: str
    at: datetime
    payload: dict[str, Any]


class CallbackDetail(CallbackOut):
    escalations: list[EscalationOut]
    attempts: list[AttemptOut]
    events: list[EventOut]
    suggested_slots: list[Any] | None


class BulkItemResult(BaseModel):
    id: uuid.UUID
    ok: bool
    status: CallbackStatus | None = None
    error: dict[str, Any] | None = None


class BulkResult(BaseModel):
    succeeded: int
    failed: int
    results: list[BulkItemResult]


class StaffLoad(BaseModel):
    staff_id: uuid.UUID
    name: str | None
    open_callbacks: int


class Summary(BaseModel):
    pending: int
    overdue: int
    by_status: dict[str, int]
    by_priority: dict[str, int]
    completed: int
    completed_on_time: int
    sla_compliance_rate: float | None = Field(description="completed before the deadline ÷ completed")
    escalations_24h: int
    escalations_7d: int
    open_per_staff: list[StaffLoad]
    sla_by_clock: dict[SlaClock, ClockCompliance] = Field(
        description="completion by the deadline per SLA clock, each counted in its own mode"
    )


class StoredPolicyOut(BaseModel):
    id: int
    company_id: int
    scope: str
    scope_id: str
    policy_type: str
    config: dict[str, Any]


class SourceOut(BaseModel):
    level: str
    entity_id: str


class EffectivePolicyOut(BaseModel):
    policy_type: str
    config: dict[str, Any]
    sources: dict[str, SourceOut]


# --- notification settings and appointment changes -------------------------------------------------


class NotificationSettingBody(Body):
    """One entity's setting of one event on one channel. Left-out retry values take the engine's
    defaults (`CALLBACKS_NOTIFY_RETRY_COUNT`, `..._RETRY_DELAY_MINUTES`): a stored row always sets them."""

    is_enabled: bool = True
    fallback_channel: Channel | None = Field(
        default=None,
        description="used for a recipient when this channel is off or they cannot be reached on it",
    )
    retry_count: int | None = Field(default=None, ge=0, le=20)
    retry_delay_minutes: int | None = Field(default=None, ge=0, le=1440)
    template_override: MultiLine | None = Field(
        default=None,
        max_length=5000,
        description="a Jinja template for the message's summary line (rendered in a sandbox)",
    )


class NotificationSettingOut(BaseModel):
    id: int
    company_id: int
    scope: str
    scope_id: str
    event_type: str
    channel: Channel
    is_enabled: bool
    fallback_channel: Channel | None
    retry_count: int
    retry_delay_minutes: int
    template_override: str | None


class EffectiveNotificationOut(BaseModel):
    event_type: str
    channel: Channel
    enabled: bool
    fallback_channel: Channel | None
    retry_count: int
    retry_delay_minutes: int
    template_override: str | None
    sources: dict[str, str] = Field(
        description='the level that supplied each key, e.g. "branch:3"; "default"'
    )


class DeliveryPage(BaseModel):
    items: list[DeliveryRecord]
    next_before_id: int | None = Field(description="`before_id` of the next (older) page; null at the end")


class CancelAppointmentBody(Body):
    reason: MultiLine | None = Field(default=None, max_length=1000)


class RescheduleAppointmentBody(Body):
    new_start: AwareDatetime = Field(
        description="the new start, with an offset; the appointment keeps its length"
    )
    reason: MultiLine | None = Field(default=None, max_length=1000)
