"""one Cal.com request budget per API key, shared by every process

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 12:00:00

Cal.com counts requests per API key; the worker and the API (or two workers) each kept their own count of
the same key and together overspent it (429s, then a 60-second block). Now the budget is one row per key,
named by a hash of the key (never the key), changed under a row lock by every process.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calcom_rate_budgets",
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("window_limit", sa.Integer(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("reset_at", TZ, nullable=True),
        sa.Column("blocked_until", TZ, nullable=True),
        sa.Column("block_source", sa.String(16), nullable=True),
        sa.Column("last_sent_at", TZ, nullable=True),
        sa.Column("sent", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("window_first_ticket", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_observed_ticket", sa.BigInteger(), server_default="-1", nullable=False),
        sa.Column("probe_ticket", sa.BigInteger(), nullable=True),
        sa.Column("probe_until", TZ, nullable=True),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_calcom_rate_budgets")),
    )


def downgrade() -> None:
    op.drop_table("calcom_rate_budgets")
