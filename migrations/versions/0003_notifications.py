"""notifications: delivery log, event catalogue, quiet hours per branch, staff locale

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 15:00:00

The catalogue is data the engine relies on (which events exist, who hears about them, on which channels
by default), so it is seeded here, with the schema, rather than by a script someone may forget. Each row's
`metadata.audience` names the recipient roles of the event (rules/notifications.py reads it).
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# event type, category, label, default channels, system event, audience, description
CATALOGUE: list[tuple[str, str, str, list[str], bool, list[str], str]] = [
    (
        "callback.created",
        "callback",
        "Callback requested",
        ["email", "webhook"],
        False,
        ["customer", "webhook"],
        "A customer asked to be called back; the customer gets a confirmation.",
    ),
    (
        "callback.assigned",
        "callback",
        "Callback assigned",
        ["email", "webhook"],
        False,
        ["assignee", "webhook"],
        "A staff member was given a callback.",
    ),
    (
        "callback.sla_warning",
        "sla",
        "SLA warning",
        ["email", "webhook"],
        True,
        ["assignee_or_managers", "webhook"],
        "50 % or 75 % of the SLA has passed and the callback is still open.",
    ),
    (
        "callback.escalated",
        "sla",
        "Callback escalated",
        ["email", "webhook"],
        True,
        ["assignee", "previous_assignee", "managers", "webhook"],
        "The SLA was breached, contact attempts failed, or someone escalated by hand.",
    ),
    (
        "callback.contacted",
        "callback",
        "Customer contacted",
        ["webhook"],
        False,
        ["webhook"],
        "Staff reached the customer.",
    ),
    (
        "callback.attempt_failed",
        "callback",
        "Contact attempt failed",
        ["webhook"],
        False,
        ["webhook"],
        "Staff tried to reach the customer and could not.",
    ),
    (
        "callback.completed",
        "callback",
        "Callback completed",
        ["webhook"],
        False,
        ["webhook"],
        "The callback was done.",
    ),
    (
        "callback.cancelled",
        "callback",
        "Callback cancelled",
        ["email", "webhook"],
        False,
        ["assignee", "customer", "webhook"],
        "The callback was withdrawn.",
    ),
    (
        "callback.expired",
        "sla",
        "Callback expired",
        ["email", "webhook"],
        True,
        ["assignee", "managers", "webhook"],
        "The callback stayed open past its last escalation.",
    ),
    (
        "callback.priority_changed",
        "callback",
        "Priority changed",
        ["webhook"],
        False,
        ["assignee", "webhook"],
        "The priority (and with it the SLA deadline) changed.",
    ),
    (
        "appointment.cancelled",
        "appointment",
        "Appointment cancelled",
        ["email", "webhook"],
        False,
        ["customer", "assignee", "webhook"],
        "An appointment was cancelled.",
    ),
    (
        "appointment.rescheduled",
        "appointment",
        "Appointment rescheduled",
        ["email", "webhook"],
        False,
        ["customer", "assignee", "webhook"],
        "An appointment was moved to another time.",
    ),
]


def upgrade() -> None:
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("recipient_type", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=2048), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notification_deliveries_attempts_not_negative")),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'webhook', 'push')", name=op.f("ck_notification_deliveries_channel")
        ),
        sa.CheckConstraint(
            "recipient_type IN ('staff', 'customer', 'webhook')",
            name=op.f("ck_notification_deliveries_recipient_type"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed')",
            name=op.f("ck_notification_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("notification_deliveries_company_id_foreign"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_deliveries")),
        sa.UniqueConstraint(
            "event_id", "recipient", "channel", name=op.f("unique_delivery_per_event_recipient")
        ),
    )
    op.create_index(
        "notification_deliveries_idx_company_created",
        "notification_deliveries",
        ["company_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "notification_deliveries_idx_company_status",
        "notification_deliveries",
        ["company_id", "status"],
        unique=False,
    )
    op.create_index(
        "notification_deliveries_idx_subject",
        "notification_deliveries",
        ["company_id", "subject_type", "subject_id"],
        unique=False,
    )
    op.add_column("branches", sa.Column("quiet_hours_start", sa.Time(), nullable=True))
    op.add_column("branches", sa.Column("quiet_hours_end", sa.Time(), nullable=True))
    op.create_check_constraint(
        op.f("ck_branches_quiet_hours_pair"),
        "branches",
        "(quiet_hours_start IS NULL) = (quiet_hours_end IS NULL)",
    )
    op.add_column("staff", sa.Column("locale", sa.String(length=8), server_default="de", nullable=False))

    mappings = sa.table(
        "notification_event_mappings",
        sa.column("event_type", sa.String),
        sa.column("event_category", sa.String),
        sa.column("event_label", sa.String),
        sa.column("default_channels", postgresql.JSONB),
        sa.column("is_system_event", sa.Boolean),
        sa.column("description", sa.Text),
        sa.column("metadata", postgresql.JSONB),
    )
    op.bulk_insert(
        mappings,
        [
            {
                "event_type": event_type,
                "event_category": category,
                "event_label": label,
                "default_channels": channels,
                "is_system_event": system,
                "description": description,
                "metadata": {"audience": audience},
            }
            for event_type, category, label, channels, system, audience, description in CATALOGUE
        ],
    )


def downgrade() -> None:
    types = ", ".join(json.dumps(row[0]).replace('"', "'") for row in CATALOGUE)
    op.execute(f"DELETE FROM notification_event_mappings WHERE event_type IN ({types})")
    op.drop_column("staff", "locale")
    op.drop_constraint(op.f("ck_branches_quiet_hours_pair"), "branches", type_="check")
    op.drop_column("branches", "quiet_hours_end")
    op.drop_column("branches", "quiet_hours_start")
    op.drop_index("notification_deliveries_idx_subject", table_name="notification_deliveries")
    op.drop_index("notification_deliveries_idx_company_status", table_name="notification_deliveries")
    op.drop_index("notification_deliveries_idx_company_created", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
