"""policy engine: change notifications for policy caches, idempotent appointment modifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:00:00

Every change of `policy_configurations` (insert, update, soft or hard delete, truncate) sends a
NOTIFY on channel `policy_changed` inside the changing transaction, so it reaches every listening process
exactly when the change commits, whoever made it (the engine, a migration, an operator with psql).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_policy_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                PERFORM pg_notify('policy_changed', '{"all": true}');
                RETURN NULL;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                PERFORM pg_notify('policy_changed', json_build_object(
                    'company_id', OLD.company_id, 'policy_type', OLD.policy_type)::text);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                PERFORM pg_notify('policy_changed', json_build_object(
                    'company_id', NEW.company_id, 'policy_type', NEW.policy_type)::text);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER policy_configurations_notify AFTER INSERT OR UPDATE OR DELETE "
        "ON policy_configurations FOR EACH ROW EXECUTE FUNCTION notify_policy_change()"
    )
    op.execute(
        "CREATE TRIGGER policy_configurations_notify_truncate AFTER TRUNCATE "
        "ON policy_configurations FOR EACH STATEMENT EXECUTE FUNCTION notify_policy_change()"
    )
    op.add_column("appointment_modifications", sa.Column("request_id", sa.String(length=64), nullable=True))
    op.create_index(
        "appointment_modifications_unique_request",
        "appointment_modifications",
        ["company_id", "request_id"],
        unique=True,
        postgresql_where=sa.text("request_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "appointment_modifications_unique_request",
        table_name="appointment_modifications",
        postgresql_where=sa.text("request_id IS NOT NULL"),
    )
    op.drop_column("appointment_modifications", "request_id")
    op.execute("DROP TRIGGER policy_configurations_notify_truncate ON policy_configurations")
    op.execute("DROP TRIGGER policy_configurations_notify ON policy_configurations")
    op.execute("DROP FUNCTION notify_policy_change()")
