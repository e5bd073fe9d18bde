"""notification delivery leases: who is sending a message and until when, and channel failures apart

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:00:00

A `sending` row used to say only that some attempt had started: a retry Temporal started after a timeout
could send the message again while the first attempt was still talking to the receiver. Now the attempt
that sends holds a lease (`lease_owner`, `lease_until`) and another takes the row only after it expired.
`failures` counts the channel's failures alone, the ones a tenant's retry_count is about; an error of our
own (a database blip) no longer uses a retry up.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "notification_deliveries"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("failures", sa.Integer(), server_default="0", nullable=False))
    op.add_column(TABLE, sa.Column("lease_owner", sa.String(256), nullable=True))
    op.add_column(TABLE, sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("ck_notification_deliveries_failures_not_negative"), TABLE, "failures >= 0"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_notification_deliveries_failures_not_negative"), TABLE, type_="check")
    op.drop_column(TABLE, "lease_until")
    op.drop_column(TABLE, "lease_owner")
    op.drop_column(TABLE, "failures")
