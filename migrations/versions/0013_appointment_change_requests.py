"""appointment change requests: the intent of a cancel or reschedule, written before Cal.com is called

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-09 12:00:00

`AppointmentWorkflow` (one per appointment) writes every cancel / reschedule request here, with the decision
made at the instant the request arrived, before it calls Cal.com. A pending row holds its place in the
customer's quota; a settled row answers every retry of the same request id with the same outcome, and a
run that lost Cal.com's answer finds here that it must read the booking back instead of acting again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
TABLE = "appointment_change_requests"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "company_id",
            sa.BigInteger(),
            sa.ForeignKey("companies.id", ondelete="CASCADE", name=f"{TABLE}_company_id_foreign"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("appointment_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "customer_id",
            sa.BigInteger(),
            sa.ForeignKey("customers.id", ondelete="CASCADE", name=f"{TABLE}_customer_id_foreign"),
            nullable=True,
        ),
        sa.Column("modification_type", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("summary", sa.String(255), nullable=False),
        sa.Column("requested_at", TZ, nullable=False),
        sa.Column("plan", postgresql.JSONB(), nullable=True),
        sa.Column("outcome", postgresql.JSONB(), nullable=True),
        sa.Column("workflow_id", sa.String(255), nullable=True),
        sa.Column("settled_at", TZ, nullable=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.CheckConstraint(
            "modification_type IN ('cancel', 'reschedule')",
            name=op.f(f"ck_{TABLE}_modification_type"),
        ),
        sa.UniqueConstraint("company_id", "request_id", name=f"{TABLE}_unique_request"),
    )
    op.create_index(
        f"{TABLE}_idx_pending_customer",
        TABLE,
        ["company_id", "customer_id", "modification_type"],
        postgresql_where=sa.text("outcome IS NULL"),
    )
    op.create_index(
        f"{TABLE}_idx_pending_appointment",
        TABLE,
        ["company_id", "appointment_id"],
        postgresql_where=sa.text("outcome IS NULL"),
    )
    op.create_index(f"{TABLE}_idx_customer_id", TABLE, ["customer_id"])


def downgrade() -> None:
    op.drop_table(TABLE)
