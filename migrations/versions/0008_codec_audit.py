"""payload encryption: the codec server's audit trail, and the workflow id of each callback row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00

`codec_audit` records every request to the codec server (api/codec_server.py): who, which payloads'
companies, which workflow, when, allowed or not. It is not a tenant table (no foreign keys): an attempt on
another company's data stays on record whatever is deleted later.

`callback_requests.workflow_id` records the workflow that writes the row. Callback workflows are now
started as `c<company>.callback-<id>` so the payload codec encrypts them with the company's key; rows
written before this column (NULL) belong to the old `callback-<id>` workflows, which keep running.
Nullable, no backfill: a worker of the previous release writes rows without it during a rolling deploy,
and NULL is exactly right for the workflows it starts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("callback_requests", sa.Column("workflow_id", sa.String(length=255), nullable=True))
    op.create_table(
        "codec_audit",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("api_key_id", sa.BigInteger(), nullable=True),
        sa.Column("key_prefix", sa.String(length=16), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("key_company_id", sa.BigInteger(), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=True),
        sa.Column("namespace", sa.String(length=255), nullable=True),
        sa.Column("workflow_id", sa.String(length=255), nullable=True),
        sa.Column(
            "payload_companies", postgresql.ARRAY(sa.BigInteger()), server_default="{}", nullable=False
        ),
        sa.Column("payload_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("origin", sa.String(length=255), nullable=True),
        sa.CheckConstraint("operation IN ('decode', 'encode')", name=op.f("ck_codec_audit_operation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_codec_audit")),
    )
    op.create_index("codec_audit_idx_occurred_at", "codec_audit", ["occurred_at"])
    op.create_index("codec_audit_idx_key_company", "codec_audit", ["key_company_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("codec_audit_idx_key_company", table_name="codec_audit")
    op.drop_index("codec_audit_idx_occurred_at", table_name="codec_audit")
    op.drop_table("codec_audit")
    op.drop_column("callback_requests", "workflow_id")
