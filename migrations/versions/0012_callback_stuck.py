"""the stuck mark of callbacks whose workflow cannot get a database step through

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09 12:00:00

A database step of the callback workflow that keeps failing (transient errors, retried) used to be retried
without end and without a trace outside the workflow's history. Now the workflow marks itself stuck, and
the mark is a row here for the API, the console and the `callbacks_stuck_workflows` gauge (no foreign
keys: writing it must not wait for the callback's row).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "callback_stuck",
        sa.Column("callback_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=True),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("since", TZ, nullable=False),
        sa.Column("failed_rounds", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(200), nullable=False),
        sa.Column("gave_up_at", TZ, nullable=True),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("callback_id", name=op.f("pk_callback_stuck")),
        sa.CheckConstraint(
            "step IN ('prepare', 'candidates', 'persist')", name=op.f("ck_callback_stuck_step")
        ),
    )
    op.create_index("callback_stuck_idx_company", "callback_stuck", ["company_id"])


def downgrade() -> None:
    op.drop_table("callback_stuck")
