"""The schema on real PostgreSQL: FKs, cascades, soft deletes, partial unique indexes, index names."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.tables import (
    Base,
    CallbackEscalation,
    CallbackRequest,
    Company,
    NotificationConfiguration,
    NotificationEventMapping,
    PolicyConfiguration,
)
from store.db import transaction
from tests.factories import Tenant, make_tenant

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _callback(tenant: Tenant, **overrides: object) -> CallbackRequest:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "company_id": tenant.company_id,
        "branch_id": tenant.branch_ids[0],
        "phone_number": "+4930123456",
        "customer_name": "Test",
        "priority": "normal",
        "status": "pending",
        "expires_at": NOW + timedelta(hours=24),
    }
    values.update(overrides)
    return CallbackRequest(**values)


async def test_callback_with_unknown_branch_is_refused_by_foreign_key(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    with pytest.raises(IntegrityError, match="callback_requests_branch_id_foreign"):
        async with transaction(sessions) as session:
            session.add(_callback(tenant, branch_id=999_999))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CallbackRequest)) == 0


async def test_deleting_a_callback_deletes_its_escalations(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    callback = _callback(tenant)
    async with transaction(sessions) as session:
        session.add(callback)
        await session.flush()
        session.add(
            CallbackEscalation(
                company_id=tenant.company_id,
                callback_request_id=callback.id,
                sequence=1,
                escalation_reason="sla_breach",
                escalated_at=NOW,
            )
        )
    async with transaction(sessions) as session:
        await session.execute(delete(CallbackRequest).where(CallbackRequest.id == callback.id))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CallbackEscalation)) == 0


async def test_deleting_a_company_deletes_its_rows_in_every_tenant_table(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    other = await make_tenant(sessions, name="Other")
    async with transaction(sessions) as session:
        session.add(_callback(tenant))
        session.add(_callback(other))
        session.add(
            PolicyConfiguration(
                company_id=tenant.company_id,
                configurable_type="company",
                configurable_id=str(tenant.company_id),
                policy_type="cancellation",
                config={"hours_before": 24},
            )
        )
    async with transaction(sessions) as session:
        await session.execute(delete(Company).where(Company.id == tenant.company_id))

    tenant_tables = [t for t in Base.metadata.sorted_tables if "company_id" in t.c]
    assert len(tenant_tables) >= 14
    async with sessions() as session:
        for table in tenant_tables:
            remaining = await session.scalar(
                select(func.count()).select_from(table).where(table.c.company_id == tenant.company_id)
            )
            assert remaining == 0, f"{table.name} kept rows of the deleted company"
        # The other company is untouched.
        others = await session.scalar(
            select(func.count())
            .select_from(CallbackRequest)
            .where(CallbackRequest.company_id == other.company_id)
        )
        assert others == 1


async def test_soft_deleted_rows_are_hidden_by_default_queries_and_can_be_restored(
    sessions: Sessions,
) -> None:
    tenant = await make_tenant(sessions)
    callback = _callback(tenant)
    async with transaction(sessions) as session:
        session.add(callback)
    async with transaction(sessions) as session:
        await session.execute(
            update(CallbackRequest).where(CallbackRequest.id == callback.id).values(deleted_at=func.now())
        )
    async with sessions() as session:
        visible = await session.scalars(
            select(CallbackRequest.id).where(CallbackRequest.deleted_at.is_(None))
        )
        assert list(visible) == []
    async with transaction(sessions) as session:
        await session.execute(
            update(CallbackRequest).where(CallbackRequest.id == callback.id).values(deleted_at=None)
        )
    async with sessions() as session:
        visible = await session.scalars(
            select(CallbackRequest.id).where(CallbackRequest.deleted_at.is_(None))
        )
        assert list(visible) == [callback.id]


def _policy(tenant: Tenant, deleted: bool = False) -> PolicyConfiguration:
    return PolicyConfiguration(
        company_id=tenant.company_id,
        configurable_type="branch",
        configurable_id=str(tenant.branch_ids[0]),
        policy_type="cancellation",
        config={"hours_before": 24},
        deleted_at=NOW if deleted else None,
    )


def _notification(tenant: Tenant, deleted: bool = False) -> NotificationConfiguration:
    return NotificationConfiguration(
        company_id=tenant.company_id,
        configurable_type="company",
        configurable_id=str(tenant.company_id),
        event_type="callback.created",
        channel="email",
        deleted_at=NOW if deleted else None,
    )


def _event_mapping(tenant: Tenant, deleted: bool = False) -> NotificationEventMapping:
    return NotificationEventMapping(
        event_type=f"test.event.{tenant.company_id}",
        event_label="Test",
        event_category="test",
        default_channels=["email"],
        deleted_at=NOW if deleted else None,
    )


@pytest.mark.parametrize(
    ("make", "index"),
    [
        (_policy, "unique_policy_per_entity"),
        (_notification, "notif_config_unique_constraint"),
        (_event_mapping, "notification_event_mappings_event_type_unique"),
    ],
)
async def test_one_active_row_per_key_but_any_number_of_soft_deleted(
    sessions: Sessions, make: object, index: str
) -> None:
    tenant = await make_tenant(sessions)
    factory = make  # type: ignore[assignment]
    async with transaction(sessions) as session:
        session.add_all([factory(tenant, deleted=True), factory(tenant, deleted=True), factory(tenant)])  # type: ignore[operator]
    with pytest.raises(IntegrityError, match=index):
        async with transaction(sessions) as session:
            session.add(factory(tenant))  # type: ignore[operator]


SEED_INDEXES = {
    "policy_configurations": {
        "unique_policy_per_entity",
        "policy_configurations_idx_company",
        "idx_polymorphic_config",
        "idx_policy_type",
        "idx_override_chain",
    },
    "callback_requests": {
        "callback_requests_idx_company",
        "idx_status_priority_expires",
        "idx_assigned_status",
        "idx_company_customer",
        "idx_company_created",
    },
    "appointment_modifications": {
        "appointment_modifications_idx_company",
        "idx_customer_mods_rolling",
        "idx_appointment_history",
        "idx_policy_compliance",
        "idx_fee_analysis",
        "idx_modified_by",
    },
    "notification_configurations": {
        "notif_config_unique_constraint",
        "notif_config_company_idx",
        "notif_config_lookup_idx",
        "notif_config_event_enabled_idx",
        "notif_config_polymorphic_idx",
    },
}


async def test_the_seed_index_names_exist(sessions: Sessions) -> None:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        )
        found: dict[str, set[str]] = {}
        definitions: dict[str, str] = {}
        for table, index, definition in rows.all():
            found.setdefault(table, set()).add(index)
            definitions[index] = definition
    for table, expected in SEED_INDEXES.items():
        assert expected <= found.get(table, set()), f"{table} misses {expected - found.get(table, set())}"
    assert "WHERE (deleted_at IS NULL)" in definitions["unique_policy_per_entity"]
    assert "UNIQUE" in definitions["notif_config_unique_constraint"]


async def test_the_eighteen_foreign_keys_of_the_seed_have_its_delete_rules(sessions: Sessions) -> None:
    expected = {
        ("appointment_modifications", "appointment_id", "appointments", "CASCADE"),
        ("appointment_modifications", "company_id", "companies", "CASCADE"),
        ("appointment_modifications", "customer_id", "customers", "CASCADE"),
        ("appointment_modification_stats", "company_id", "companies", "CASCADE"),
        ("appointment_modification_stats", "customer_id", "customers", "CASCADE"),
        ("callback_escalations", "callback_request_id", "callback_requests", "CASCADE"),
        ("callback_escalations", "company_id", "companies", "CASCADE"),
        ("callback_escalations", "escalated_from", "staff", "SET NULL"),
        ("callback_escalations", "escalated_to", "staff", "SET NULL"),
        ("callback_requests", "assigned_to", "staff", "SET NULL"),
        ("callback_requests", "branch_id", "branches", "CASCADE"),
        ("callback_requests", "company_id", "companies", "CASCADE"),
        ("callback_requests", "customer_id", "customers", "SET NULL"),
        ("callback_requests", "service_id", "services", "SET NULL"),
        ("callback_requests", "staff_id", "staff", "SET NULL"),
        ("notification_configurations", "company_id", "companies", "CASCADE"),
        ("policy_configurations", "company_id", "companies", "CASCADE"),
        ("policy_configurations", "overrides_id", "policy_configurations", "SET NULL"),
    }
    async with sessions() as session:
        rows = await session.execute(
            text(
                """
                SELECT src.relname, att.attname, dst.relname,
                       CASE con.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL'
                                            WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END
                FROM pg_constraint con
                JOIN pg_class src ON src.oid = con.conrelid
                JOIN pg_class dst ON dst.oid = con.confrelid
                JOIN pg_attribute att ON att.attrelid = con.conrelid AND att.attnum = con.conkey[1]
                WHERE con.contype = 'f'
                """
            )
        )
        actual = {tuple(row) for row in rows.all()}
    assert len(expected) == 18
    assert expected <= actual, expected - actual


async def test_configurable_type_is_constrained(sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    policy = _policy(tenant)
    policy.configurable_type = "location"
    with pytest.raises(IntegrityError, match="ck_policy_configurations_configurable_type"):
        async with transaction(sessions) as session:
            session.add(policy)
