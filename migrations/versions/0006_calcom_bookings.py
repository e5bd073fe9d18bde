"""Cal.com bookings in: the booking uids an appointment was known by, and the webhook delivery log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00

A reschedule in Cal.com gives the booking a new uid; `calcom_booking_uids` remembers every uid of an
appointment, so a late event about the old uid still finds (and does not move back) the appointment. The
delivery log is the audit trail of the signed webhooks and what each came to; its unique key (trigger,
booking uid, `createdAt`) makes a redelivery a no-op. Neither table holds personal data.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calcom_booking_uids",
        sa.Column(
            "company_id",
            sa.BigInteger(),
            sa.ForeignKey("companies.id", ondelete="CASCADE", name="calcom_booking_uids_company_id_foreign"),
            nullable=False,
        ),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column(
            "appointment_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "appointments.id", ondelete="CASCADE", name="calcom_booking_uids_appointment_id_foreign"
            ),
            nullable=False,
        ),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "uid", name=op.f("pk_calcom_booking_uids")),
    )
    op.create_index("calcom_booking_uids_idx_appointment", "calcom_booking_uids", ["appointment_id"])

    op.create_table(
        "calcom_webhook_deliveries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "company_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "companies.id", ondelete="CASCADE", name="calcom_webhook_deliveries_company_id_foreign"
            ),
            nullable=False,
        ),
        sa.Column("trigger_event", sa.String(64), nullable=False),
        sa.Column("booking_uid", sa.String(255), nullable=True),
        sa.Column("event_at", TZ, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column(
            "appointment_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "appointments.id",
                ondelete="SET NULL",
                name="calcom_webhook_deliveries_appointment_id_foreign",
            ),
            nullable=True,
        ),
        sa.Column("received_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calcom_webhook_deliveries")),
    )
    op.create_index(
        "calcom_webhook_deliveries_unique_event",
        "calcom_webhook_deliveries",
        ["company_id", "trigger_event", "booking_uid", "event_at"],
        unique=True,
    )
    op.create_index(
        "calcom_webhook_deliveries_idx_company_received",
        "calcom_webhook_deliveries",
        ["company_id", "received_at"],
    )


def downgrade() -> None:
    op.drop_table("calcom_webhook_deliveries")
    op.drop_table("calcom_booking_uids")
