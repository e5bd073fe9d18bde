"""tenant directory and calendars: dial windows, webhook secret rotation, Cal.com webhook secret, branch
holidays and closures, staff working hours and absences, external ids for imports, customer erasure

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 11:00:00

Everything a real tenant brings: its branches' calendars (country and subdivision for public holidays,
closures), its staff's shifts and time off, the keys its CSV imports are re-run by, and the Cal.com
booking state an out-of-order webhook must not undo.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def _dial_window(table: str) -> None:
    op.add_column(table, sa.Column("dial_window_start", sa.Time(), nullable=True))
    op.add_column(table, sa.Column("dial_window_end", sa.Time(), nullable=True))
    op.create_check_constraint(
        op.f(f"ck_{table}_dial_window_pair"), table, "(dial_window_start IS NULL) = (dial_window_end IS NULL)"
    )


def _external_id(table: str) -> None:
    op.add_column(table, sa.Column("external_id", sa.String(255), nullable=True))
    op.create_index(
        f"{table}_uniq_company_external_id",
        table,
        ["company_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )


def upgrade() -> None:
    op.add_column("companies", sa.Column("webhook_secret_previous", sa.String(255), nullable=True))
    op.add_column("companies", sa.Column("webhook_secret_previous_until", TZ, nullable=True))
    op.add_column("companies", sa.Column("calcom_webhook_secret", sa.String(255), nullable=True))
    _dial_window("companies")

    op.add_column(
        "branches",
        sa.Column("closures", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
    )
    op.add_column("branches", sa.Column("country", sa.String(2), nullable=True))
    op.add_column("branches", sa.Column("subdivision", sa.String(16), nullable=True))
    _dial_window("branches")

    _external_id("services")

    op.add_column("staff", sa.Column("working_hours", postgresql.JSONB(), nullable=True))
    _external_id("staff")

    op.add_column("customers", sa.Column("time_zone", sa.String(64), nullable=True))
    op.add_column("customers", sa.Column("erased_at", TZ, nullable=True))
    _external_id("customers")

    op.add_column("appointments", sa.Column("calcom_changed_at", TZ, nullable=True))

    op.create_table(
        "staff_absences",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "company_id",
            sa.BigInteger(),
            sa.ForeignKey("companies.id", ondelete="CASCADE", name="staff_absences_company_id_foreign"),
            nullable=False,
        ),
        sa.Column(
            "staff_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("staff.id", ondelete="CASCADE", name="staff_absences_staff_id_foreign"),
            nullable=False,
        ),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.Column("kind", sa.String(16), server_default="vacation", nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_staff_absences_ends_after_start")),
        sa.CheckConstraint("kind IN ('vacation', 'sick', 'other')", name=op.f("ck_staff_absences_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_absences")),
    )
    op.create_index("staff_absences_idx_staff_period", "staff_absences", ["staff_id", "starts_at", "ends_at"])


def downgrade() -> None:
    op.drop_table("staff_absences")
    op.drop_column("appointments", "calcom_changed_at")
    for table in ("customers", "staff", "services"):
        op.drop_index(f"{table}_uniq_company_external_id", table_name=table)
        op.drop_column(table, "external_id")
    op.drop_column("customers", "erased_at")
    op.drop_column("customers", "time_zone")
    op.drop_column("staff", "working_hours")
    for table in ("branches", "companies"):
        op.drop_constraint(op.f(f"ck_{table}_dial_window_pair"), table, type_="check")
        op.drop_column(table, "dial_window_end")
        op.drop_column(table, "dial_window_start")
    op.drop_column("branches", "subdivision")
    op.drop_column("branches", "country")
    op.drop_column("branches", "closures")
    op.drop_column("companies", "calcom_webhook_secret")
    op.drop_column("companies", "webhook_secret_previous_until")
    op.drop_column("companies", "webhook_secret_previous")
