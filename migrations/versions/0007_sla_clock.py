"""SLA clock and dial windows on the callback read model

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 10:00:00

Each callback row says which clock its SLA runs on (`calendar` or `business_hours`; `expires_at` is the
wall-clock deadline either way, so SLA compliance counts in the callback's own mode) and when its customer
may be called: the allowed hours in the customer's zone and their preferred window, which the API turns
into "callable now" / "next callable at" and the console's queue filters on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "callback_requests"
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("sla_clock", sa.String(16), server_default="calendar", nullable=False))
    op.create_check_constraint(
        op.f("ck_callback_requests_sla_clock"), TABLE, "sla_clock IN ('calendar', 'business_hours')"
    )
    op.add_column(TABLE, sa.Column("dial_time_zone", sa.String(64), nullable=True))
    op.add_column(TABLE, sa.Column("dial_window_start", sa.Time(), nullable=True))
    op.add_column(TABLE, sa.Column("dial_window_end", sa.Time(), nullable=True))
    op.add_column(TABLE, sa.Column("dial_not_before", TZ, nullable=True))
    op.add_column(TABLE, sa.Column("dial_not_after", TZ, nullable=True))


def downgrade() -> None:
    for column in (
        "dial_not_after",
        "dial_not_before",
        "dial_window_end",
        "dial_window_start",
        "dial_time_zone",
    ):
        op.drop_column(TABLE, column)
    op.drop_constraint(op.f("ck_callback_requests_sla_clock"), TABLE, type_="check")
    op.drop_column(TABLE, "sla_clock")
