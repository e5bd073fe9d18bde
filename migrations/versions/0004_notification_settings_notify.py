"""notification settings: change notifications for the settings cache

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 12:00:00

Notification settings are cached like policies (store/settings_cache.py), so every change of
`notification_configurations` (insert, update, soft or hard delete, truncate) sends a NOTIFY inside the
changing transaction, whoever made it. It goes to a channel of its own, `notification_settings_changed`:
a process that only knows `policy_changed` (a worker of the previous release during a rolling deploy)
then neither misreads it nor drops its policies for it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_notification_setting_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                PERFORM pg_notify('notification_settings_changed', '{"all": true}');
                RETURN NULL;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                PERFORM pg_notify('notification_settings_changed', json_build_object(
                    'company_id', OLD.company_id, 'event_type', OLD.event_type)::text);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                PERFORM pg_notify('notification_settings_changed', json_build_object(
                    'company_id', NEW.company_id, 'event_type', NEW.event_type)::text);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER notification_configurations_notify AFTER INSERT OR UPDATE OR DELETE "
        "ON notification_configurations FOR EACH ROW EXECUTE FUNCTION notify_notification_setting_change()"
    )
    op.execute(
        "CREATE TRIGGER notification_configurations_notify_truncate AFTER TRUNCATE "
        "ON notification_configurations FOR EACH STATEMENT "
        "EXECUTE FUNCTION notify_notification_setting_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER notification_configurations_notify_truncate ON notification_configurations")
    op.execute("DROP TRIGGER notification_configurations_notify ON notification_configurations")
    op.execute("DROP FUNCTION notify_notification_setting_change()")
