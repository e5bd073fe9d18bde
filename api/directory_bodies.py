"""What the directory endpoints accept and answer: companies, branches, services, staff (with absences) and
customers, and the bulk import's report.

Create bodies carry every column a tenant sets; update bodies (PATCH) the same fields, all optional: only
the fields sent are changed, and `null` clears a column that may be empty. Calendar shapes (hours,
closures, zones, countries) are checked in api/directory_schemas.py, phone numbers by the routes (a
national number is read in the branch's or the company's country, which only the database knows).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, time
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    WithJsonSchema,
    field_validator,
)

from api.directory_schemas import ClosureList, CountryCode, TimeZoneName, WeeklyHoursIn
from api.params import LOCAL_TIME_PATTERN, LOCAL_TIME_SCHEMA, MAX_ID, LocalTimeOut
from api.schemas import Body
from api.text import Documented, EmailText, RequiredLine, SingleLine

LOCALES = ("de", "en")


def _local_time(value: Any) -> Any:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError("a local wall-clock time: leave out the UTC offset")
        return value
    if not isinstance(value, str) or not re.fullmatch(LOCAL_TIME_PATTERN, value):
        raise ValueError("a local wall-clock time HH:MM, e.g. 09:30 (no UTC offset)")
    return value


def _minute(value: time) -> time:
    return value.replace(second=0, microsecond=0)


LocalTime = Annotated[
    time,
    BeforeValidator(_local_time),
    AfterValidator(_minute),
    WithJsonSchema(LOCAL_TIME_SCHEMA),
]
Email = Annotated[EmailText, Field(max_length=255)]


def _currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError("is not an ISO 4217 currency code in capitals, e.g. EUR")
    return value


Currency = Annotated[
    str, AfterValidator(_currency), Documented({"pattern": "^[A-Z]{3}$", "description": "ISO 4217, e.g. EUR"})
]
Phone = Annotated[SingleLine, Field(max_length=32, description="international, or national in the country")]
ExternalId = Annotated[RequiredLine, Field(max_length=255, description="your own id of the row (imports)")]
Locale = Literal["de", "en"]
CompanyRef = Annotated[int | None, Field(gt=0, le=MAX_ID, description="super_admin keys only")]


# --- companies -----------------------------------------------------------------------------------


class CompanyCreate(Body):
    name: RequiredLine = Field(max_length=255)
    time_zone: TimeZoneName = "UTC"
    currency: Currency = "EUR"
    webhook_url: SingleLine | None = Field(
        default=None, max_length=2048, description="events are POSTed here, signed (Standard Webhooks)"
    )
    calcom_webhook_secret: SingleLine | None = Field(
        default=None, min_length=8, max_length=255, description="write-only: never answered back"
    )
    dial_window_start: LocalTime | None = None
    dial_window_end: LocalTime | None = None


class CompanyUpdate(Body):
    not_null: ClassVar[tuple[str, ...]] = ("name", "time_zone", "currency")
    name: RequiredLine | None = Field(default=None, max_length=255, description="super_admin only")
    time_zone: TimeZoneName | None = Field(default=None)
    currency: Currency | None = None
    webhook_url: SingleLine | None = Field(default=None, max_length=2048)
    calcom_webhook_secret: SingleLine | None = Field(default=None, min_length=8, max_length=255)
    dial_window_start: LocalTime | None = None
    dial_window_end: LocalTime | None = None


class CompanyOut(BaseModel):
    id: int
    name: str
    time_zone: str
    currency: str
    webhook_url: str | None
    webhook_secret_set: bool
    webhook_secret_previous_until: datetime | None = Field(
        description="until then the previous secret is still known (after a rotation)"
    )
    calcom_webhook_secret_set: bool
    dial_window_start: LocalTimeOut | None
    dial_window_end: LocalTimeOut | None
    created_at: datetime
    updated_at: datetime
    webhook_secret: str | None = Field(
        default=None, description="only in the answer that generated it: shown once, store it now"
    )


# --- branches ------------------------------------------------------------------------------------


class BranchCreate(Body):
    company_id: CompanyRef = None
    name: RequiredLine = Field(max_length=255)
    time_zone: TimeZoneName | None = Field(default=None, description="default: the company's")
    country: CountryCode | None = Field(default=None, description="ISO 3166-1 alpha-2 (public holidays)")
    subdivision: SingleLine | None = Field(default=None, max_length=16, description="e.g. BE for Berlin")
    opening_hours: WeeklyHoursIn = Field(default_factory=WeeklyHoursIn)
    closures: ClosureList = Field(default_factory=list)
    quiet_hours_start: LocalTime | None = None
    quiet_hours_end: LocalTime | None = None
    dial_window_start: LocalTime | None = None
    dial_window_end: LocalTime | None = None
    phone_number: Phone | None = None
    email: Email | None = None


class BranchUpdate(Body):
    not_null: ClassVar[tuple[str, ...]] = ("name", "time_zone", "opening_hours", "closures")
    name: RequiredLine | None = Field(default=None, max_length=255)
    time_zone: TimeZoneName | None = Field(default=None)
    country: CountryCode | None = None
    subdivision: SingleLine | None = Field(default=None, max_length=16)
    opening_hours: WeeklyHoursIn | None = Field(default=None)
    closures: ClosureList | None = Field(default=None)
    quiet_hours_start: LocalTime | None = None
    quiet_hours_end: LocalTime | None = None
    dial_window_start: LocalTime | None = None
    dial_window_end: LocalTime | None = None
    phone_number: Phone | None = None
    email: Email | None = None


class BranchOut(BaseModel):
    id: int
    company_id: int
    name: str
    time_zone: str
    country: str | None
    subdivision: str | None
    opening_hours: dict[str, Any]
    closures: list[Any]
    quiet_hours_start: LocalTimeOut | None
    quiet_hours_end: LocalTimeOut | None
    dial_window_start: LocalTimeOut | None
    dial_window_end: LocalTimeOut | None
    phone_number: str | None
    email: str | None
    created_at: datetime
    updated_at: datetime


# --- services ------------------------------------------------------------------------------------


class ServiceCreate(Body):
    company_id: CompanyRef = None
    name: RequiredLine = Field(max_length=255)
    branch_id: int | None = Field(default=None, gt=0, le=MAX_ID, description="null: every branch")
    duration_minutes: int = Field(default=30, gt=0, le=24 * 60)
    price: Decimal = Field(default=Decimal(0), ge=0, max_digits=10, decimal_places=2)
    calcom_event_type_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    is_active: bool = True
    external_id: ExternalId | None = None


class ServiceUpdate(Body):
    not_null: ClassVar[tuple[str, ...]] = ("name", "duration_minutes", "price", "is_active")
    name: RequiredLine | None = Field(default=None, max_length=255)
    branch_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    duration_minutes: int | None = Field(default=None, gt=0, le=24 * 60)
    price: Decimal | None = Field(default=None, ge=0, max_digits=10, decimal_places=2)
    calcom_event_type_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    is_active: bool | None = Field(default=None)
    external_id: ExternalId | None = None


class ServiceOut(BaseModel):
    id: int
    company_id: int
    branch_id: int | None
    name: str
    duration_minutes: int
    price: Decimal
    calcom_event_type_id: int | None
    is_active: bool
    external_id: str | None
    created_at: datetime
    updated_at: datetime


# --- staff ---------------------------------------------------------------------------------------


def _unique_ids(value: list[int] | None) -> list[int] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("lists a service more than once")
    return sorted(value) if value is not None else None


class StaffCreate(Body):
    company_id: CompanyRef = None
    name: RequiredLine = Field(max_length=255)
    branch_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    email: Email | None = None
    phone_number: Phone | None = None
    is_active: bool = True
    is_manager: bool = False
    max_open_callbacks: int | None = Field(default=None, ge=0, le=10_000, description="null: no limit")
    locale: Locale = "de"
    working_hours: WeeklyHoursIn | None = Field(default=None, description="null: the branch's hours")
    service_ids: list[Annotated[int, Field(gt=0, le=MAX_ID)]] = Field(
        default_factory=list, max_length=500, json_schema_extra={"uniqueItems": True}
    )
    external_id: ExternalId | None = None

    _services = field_validator("service_ids")(_unique_ids)


class StaffUpdate(Body):
    not_null: ClassVar[tuple[str, ...]] = ("name", "is_manager", "locale", "service_ids")
    name: RequiredLine | None = Field(default=None, max_length=255)
    branch_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    email: Email | None = None
    phone_number: Phone | None = None
    is_manager: bool | None = Field(default=None)
    max_open_callbacks: int | None = Field(default=None, ge=0, le=10_000)
    locale: Locale | None = Field(default=None)
    working_hours: WeeklyHoursIn | None = None
    service_ids: list[Annotated[int, Field(gt=0, le=MAX_ID)]] | None = Field(
        default=None, max_length=500, json_schema_extra={"uniqueItems": True}
    )
    external_id: ExternalId | None = None

    _services = field_validator("service_ids")(_unique_ids)


class StaffOut(BaseModel):
    id: uuid.UUID
    company_id: int
    branch_id: int | None
    name: str
    email: str | None
    phone_number: str | None
    is_active: bool
    is_manager: bool
    max_open_callbacks: int | None
    locale: str
    working_hours: dict[str, Any] | None
    service_ids: list[int]
    external_id: str | None
    created_at: datetime
    updated_at: datetime


class Reassignment(BaseModel):
    signalled: int = Field(description="open callbacks whose workflow was told to reassign them")
    failed: list[uuid.UUID] = Field(description="callbacks that could not be told (deactivate again)")


class DeactivatedStaffOut(StaffOut):
    reassignment: Reassignment


class AbsenceCreate(Body):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    kind: Literal["vacation", "sick", "other"] = "vacation"
    note: SingleLine | None = Field(default=None, max_length=500)

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, value: datetime, info: Any) -> datetime:
        start = info.data.get("starts_at")
        if start is not None and value <= start:
            raise ValueError("must be after starts_at")
        return value


class AbsenceOut(BaseModel):
    id: int
    staff_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    kind: str
    note: str | None


# --- customers -----------------------------------------------------------------------------------


class CustomerCreate(Body):
    company_id: CompanyRef = None
    name: RequiredLine = Field(max_length=255)
    phone_number: Phone | None = None
    email: Email | None = None
    locale: Locale = "de"
    time_zone: TimeZoneName | None = Field(default=None, description="null: from the phone number")
    external_id: ExternalId | None = None


class CustomerUpdate(Body):
    not_null: ClassVar[tuple[str, ...]] = ("name", "locale")
    name: RequiredLine | None = Field(default=None, max_length=255)
    phone_number: Phone | None = None
    email: Email | None = None
    locale: Locale | None = Field(default=None)
    time_zone: TimeZoneName | None = None
    external_id: ExternalId | None = None


class CustomerOut(BaseModel):
    id: int
    company_id: int
    name: str
    phone_number: str | None
    email: str | None
    locale: str
    time_zone: str | None
    external_id: str | None
    erased_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- lists and imports ---------------------------------------------------------------------------

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class RefusedRow(BaseModel):
    row: int = Field(description="the line of the file (the header is line 1)")
    external_id: str | None
    reason: str


class ImportReport(BaseModel):
    kind: str
    dry_run: bool
    rows: int
    valid: int
    created: int
    updated: int
    unchanged: int
    refused: list[RefusedRow]
    deactivated: int = Field(default=0, description="staff deactivated by this import (is_active=false)")
