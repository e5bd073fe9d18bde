"""The PostgreSQL schema as SQLAlchemy 2.0 typed models (Alembic migrations are generated from these), one
module per part of the domain; every table and value list is importable from `models.tables`.

Rules that the seed got wrong are fixed here: uniqueness that must ignore soft-deleted rows is a partial
unique index `WHERE deleted_at IS NULL` (a NULL inside a UNIQUE key never collides in PostgreSQL), and index
names the seed reused on several tables are prefixed with their table (index names are per schema).
"""

from models.tables.appointments import (
    Appointment,
    AppointmentChangeRequestRow,
    AppointmentModification,
    AppointmentModificationStat,
)
from models.tables.audit import CODEC_OPERATIONS, CodecAudit
from models.tables.base import (
    ABSENCE_KINDS,
    API_KEY_ROLES,
    APPOINTMENT_STATUSES,
    CALLBACK_STATUSES,
    CHANNELS,
    CONFIGURABLE_TYPES,
    DELIVERY_STATUSES,
    MODIFICATION_TYPES,
    NAMING_CONVENTION,
    POLICY_TYPES,
    PRIORITIES,
    RECIPIENT_TYPES,
    Base,
    SoftDelete,
    Timestamps,
)
from models.tables.calcom import CalcomBookingUid, CalcomRateBudget, CalcomWebhookDelivery
from models.tables.callbacks import CallbackEscalation, CallbackEventRow, CallbackRequest
from models.tables.console import ConsoleSessionRow
from models.tables.notifications import (
    NotificationConfiguration,
    NotificationDelivery,
    NotificationEventMapping,
)
from models.tables.outbox import NotificationOutbox
from models.tables.policies import PolicyConfiguration
from models.tables.stuck import STUCK_STEPS, CallbackStuckRow
from models.tables.tenancy import (
    ApiKey,
    Branch,
    Company,
    Customer,
    Service,
    Staff,
    StaffAbsence,
    StaffService,
)

__all__ = [
    "ABSENCE_KINDS",
    "API_KEY_ROLES",
    "APPOINTMENT_STATUSES",
    "CALLBACK_STATUSES",
    "CHANNELS",
    "CODEC_OPERATIONS",
    "CONFIGURABLE_TYPES",
    "DELIVERY_STATUSES",
    "MODIFICATION_TYPES",
    "NAMING_CONVENTION",
    "POLICY_TYPES",
    "PRIORITIES",
    "RECIPIENT_TYPES",
    "STUCK_STEPS",
    "ApiKey",
    "Appointment",
    "AppointmentChangeRequestRow",
    "AppointmentModification",
    "AppointmentModificationStat",
    "Base",
    "Branch",
    "CalcomBookingUid",
    "CalcomRateBudget",
    "CalcomWebhookDelivery",
    "CallbackEscalation",
    "CallbackEventRow",
    "CallbackRequest",
    "CallbackStuckRow",
    "CodecAudit",
    "Company",
    "ConsoleSessionRow",
    "Customer",
    "NotificationConfiguration",
    "NotificationDelivery",
    "NotificationEventMapping",
    "NotificationOutbox",
    "PolicyConfiguration",
    "Service",
    "SoftDelete",
    "Staff",
    "StaffAbsence",
    "StaffService",
    "Timestamps",
]
