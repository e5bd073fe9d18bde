"""notification outbox: a callback step's notifications written in the step's own transaction

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 12:00:00

The callback workflow used to resolve who hears about each event, and start the notification runs, in a
local activity of its own after every step: on the callback's workflow task, before an Update could
answer. Now the step's write also writes its notifiable events here, and the worker's dispatcher resolves
and starts them (activities/notification_outbox.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "company_id",
            sa.BigInteger(),
            sa.ForeignKey("companies.id", ondelete="CASCADE", name="notification_outbox_company_id_foreign"),
            nullable=False,
        ),
        sa.Column(
            "callback_request_id",
            sa.Uuid(),
            sa.ForeignKey(
                "callback_requests.id",
                ondelete="CASCADE",
                name="notification_outbox_callback_request_id_foreign",
            ),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("event", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("available_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_notification_outbox_workflow_id")),
    )
    op.create_index("notification_outbox_idx_available_at", "notification_outbox", ["available_at"])


def downgrade() -> None:
    op.drop_index("notification_outbox_idx_available_at", table_name="notification_outbox")
    op.drop_table("notification_outbox")
