"""console sessions kept on the server, so that signing out ends a session everywhere

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:00:00

A console session used to live in its signed cookie only: signing out deleted the cookie in that browser,
and a copy of it stayed valid until it expired. Now every sign-in is a row, every request checks it, and
signing out ends it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column(
            "api_key_id",
            sa.BigInteger(),
            sa.ForeignKey("api_keys.id", ondelete="CASCADE", name="console_sessions_api_key_id_foreign"),
            nullable=False,
        ),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    op.create_index("console_sessions_idx_api_key", "console_sessions", ["api_key_id"])
    op.create_index("console_sessions_idx_expires_at", "console_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("console_sessions")
