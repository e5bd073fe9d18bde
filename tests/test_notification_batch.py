"""Resolving a batch of events on real PostgreSQL: the same plans as one event at a time, a bounded
number of statements whatever the batch's size, nothing read that no audience can reach; and the outbox
dispatcher resolving the rows written right after a kick as one batch."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, cast

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.notification_outbox import NotificationOutbox
from models.callbacks import CallbackEvent, Priority
from models.notifications import NotificationSubject, NotifyEvent, PlannedDelivery
from models.tables import Branch, Customer, NotificationEventMapping, Staff
from rules.notifications import RetryDefaults
from store import notification_outbox
from store import notifications as store
from store.callback_writes import write_step
from store.db import transaction
from store.notification_settings import NotificationSettings, set_notification_setting
from tests.factories import add_staff, make_tenant
from tests.notify_fixtures import People, callback_state, notify_tenant

Sessions = async_sessionmaker[AsyncSession]
# 23:30 in Berlin: inside the second branch's quiet hours (22:00-07:00), which end at 06:00 UTC.
AT = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)
QUIET_END = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
DEFAULTS = RetryDefaults()
QUIET_DEFAULT = store.QuietDefault(time(22), time(7))


@contextmanager
def count_statements(sessions: Sessions) -> Iterator[list[str]]:
    engine = sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa_event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa_event.remove(engine.sync_engine, "before_cursor_execute", record)


@dataclass
class World:
    people: People
    other_company: int
    north: uuid.UUID  # manager of the second branch
    retired: uuid.UUID  # inactive manager of the first branch
    silent: uuid.UUID  # no address at all
    roaming: uuid.UUID  # manager of no branch
    customer: int
    inactive: str  # an event type of the catalogue that is switched off


async def _world(sessions: Sessions) -> World:
    people = await notify_tenant(sessions, webhook_url="https://hooks.example/praxis")
    tenant = people.tenant
    north = await add_staff(sessions, tenant, branch=1)
    retired = await add_staff(sessions, tenant, active=False)
    silent = await add_staff(sessions, tenant, branch=1)
    roaming = await add_staff(sessions, tenant)
    other = await make_tenant(sessions, name="Other")
    inactive = f"test.switched_off_{uuid.uuid4().hex[:8]}"
    async with transaction(sessions) as session:
        for staff_id, values in (
            (north, {"is_manager": True, "email": "north@praxis.example"}),
            (retired, {"is_manager": True, "email": "retired@praxis.example"}),
            (roaming, {"is_manager": True, "email": "roaming@praxis.example", "branch_id": None}),
        ):
            await session.execute(update(Staff).where(Staff.id == staff_id).values(**values))
        await session.execute(
            update(Customer)
            .where(Customer.id == tenant.customer_ids[0])
            .values(email="erika@example.org", locale="en")
        )
        await session.execute(
            update(Branch)
            .where(Branch.id == tenant.branch_ids[0])
            .values(quiet_hours_start=time(0), quiet_hours_end=time(0))
        )
        await session.execute(
            update(Branch)
            .where(Branch.id == tenant.branch_ids[1])
            .values(quiet_hours_start=time(22), quiet_hours_end=time(7))
        )
        session.add(
            NotificationEventMapping(
                event_type=inactive,
                event_label="Switched off",
                event_category="callback",
                default_channels=["email", "webhook"],
                is_active=False,
                metadata_={"audience": ["assignee", "customer", "webhook"]},
            )
        )
        company = {"company_id": tenant.company_id}
        await set_notification_setting(
            session,
            **company,
            level="company",
            entity_id=tenant.company_id,
            event_type="callback.assigned",
            channel="sms",
        )
        await set_notification_setting(
            session,
            **company,
            level="branch",
            entity_id=tenant.branch_ids[1],
            event_type="callback.escalated",
            channel="email",
            is_enabled=False,
            fallback_channel="sms",
        )
    return World(people, other.company_id, north, retired, silent, roaming, tenant.customer_ids[0], inactive)


def _event(
    event_type: str,
    company_id: int,
    branch_id: int | None,
    *,
    assigned: uuid.UUID | None = None,
    previous: Sequence[uuid.UUID] = (),
    customer_id: int | None = None,
    customer_email: str | None = None,
    payload: dict[str, Any] | None = None,
    priority: Priority = Priority.NORMAL,
) -> NotifyEvent:
    subject_id = str(uuid.uuid4())
    return NotifyEvent(
        event_id=f"callback:{subject_id}:1",
        type=event_type,
        occurred_at=AT,
        payload=payload or {},
        subject=NotificationSubject(
            type="callback",
            id=subject_id,
            company_id=company_id,
            branch_id=branch_id,
            priority=priority,
            assigned_staff_id=assigned,
            previous_staff_ids=list(previous),
            customer_id=customer_id,
            customer_email=customer_email,
        ),
    )


def _mixed(world: World) -> list[NotifyEvent]:
    """One of each kind the batch must keep apart."""
    p = world.people
    company, (first, second) = p.tenant.company_id, p.tenant.branch_ids
    escalated = {"escalated_from": str(p.alice), "escalated_to": str(p.bob)}
    return [
        _event("callback.created", company, first, customer_id=world.customer),  # the row's email
        _event("callback.created", company, second, customer_email="anon@example.org"),  # no customer row
        _event("callback.assigned", company, first, assigned=p.bob, payload={"staff_id": str(p.bob)}),
        _event("callback.assigned", company, second, assigned=world.silent),  # the webhook only
        _event("callback.escalated", company, first, assigned=p.bob, previous=[p.alice], payload=escalated),
        _event("callback.escalated", company, second, assigned=p.bob, payload=escalated),
        _event("callback.sla_warning", company, second),  # no assignee: the branch's managers
        _event("callback.sla_warning", company, first, assigned=p.bob, priority=Priority.URGENT),
        _event("callback.completed", company, first),
        _event("callback.expired", company, None, assigned=p.bob, previous=[world.roaming]),
        _event(world.inactive, company, first, assigned=p.bob, customer_id=world.customer),
        _event("test.unknown", company, first, assigned=p.bob),
        # Another company naming this one's staff and customer: it reaches neither.
        _event(
            "callback.escalated",
            world.other_company,
            None,
            assigned=p.bob,
            customer_id=world.customer,
            payload=escalated,
        ),
        _event("callback.cancelled", world.other_company, None, assigned=p.bob, customer_id=world.customer),
    ]


def _summary(plans: Sequence[Sequence[PlannedDelivery]]) -> list[tuple[int, str, str, str, bool]]:
    return sorted(
        (index, planned.recipient.key, planned.channel.value, planned.address, planned.not_before is not None)
        for index, each in enumerate(plans)
        for planned in each
    )


async def _batch(
    sessions: Sessions, events: Sequence[NotifyEvent], settings: NotificationSettings | None = None
) -> list[list[PlannedDelivery]]:
    async with sessions() as session:
        return await store.resolve_batch(
            session, events, defaults=DEFAULTS, quiet_default=QUIET_DEFAULT, settings=settings
        )


async def test_a_batch_resolves_to_the_plans_of_its_events_resolved_alone(sessions: Sessions) -> None:
    world = await _world(sessions)
    events = _mixed(world)
    batch = await _batch(sessions, events)
    alone = []
    for each in events:
        async with sessions() as session:
            alone.append(
                await store.resolve_deliveries(session, each, defaults=DEFAULTS, quiet_default=QUIET_DEFAULT)
            )
    assert batch == alone

    p, hook = world.people, f"webhook:{world.people.tenant.company_id}"
    url, bob, alice, mia = (
        "https://hooks.example/praxis",
        f"staff:{p.bob}",
        f"staff:{p.alice}",
        f"staff:{p.manager}",
    )
    north, roaming = f"staff:{world.north}", f"staff:{world.roaming}"
    bob_phone = f"+49301000{len('bob')}{p.bob.int}"
    held = True  # the second branch's quiet hours hold messages to people back
    assert _summary(batch) == sorted(
        [
            (0, f"customer:{world.customer}", "email", "erika@example.org", False),
            (0, hook, "webhook", url, False),
            (1, f"customer:callback-{events[1].subject.id}", "email", "anon@example.org", held),
            (1, hook, "webhook", url, False),
            (2, bob, "email", "bob@praxis.example", False),
            (2, bob, "sms", bob_phone, False),  # switched on for the company
            (2, hook, "webhook", url, False),
            (3, hook, "webhook", url, False),  # the assignee has no address
            (4, bob, "email", "bob@praxis.example", False),
            (4, alice, "email", "alice@praxis.example", False),
            (4, mia, "email", "mia@praxis.example", False),  # not the inactive manager
            (4, hook, "webhook", url, False),
            # Email off in the second branch, SMS its fallback; the branch's manager has no phone.
            (5, bob, "sms", bob_phone, held),
            (5, alice, "sms", f"+49301000{len('alice')}{p.alice.int}", held),
            (5, hook, "webhook", url, False),
            (6, north, "email", "north@praxis.example", held),
            (6, hook, "webhook", url, False),
            (7, bob, "email", "bob@praxis.example", False),
            (7, hook, "webhook", url, False),
            (8, hook, "webhook", url, False),
            (9, bob, "email", "bob@praxis.example", False),
            (9, roaming, "email", "roaming@praxis.example", False),  # involved, managing no branch
            (9, hook, "webhook", url, False),
        ]
    )
    assert [len(each) for each in batch[10:]] == [0, 0, 0, 0]


async def test_a_batch_costs_the_same_few_statements_whatever_its_size(
    sessions: Sessions, database_url: URL
) -> None:
    world = await _world(sessions)
    settings = NotificationSettings(sessions)
    await settings.listen(database_url)
    try:
        small = _mixed(world)[:5]
        large = [event for _ in range(2) for event in _mixed(world)]  # 28 events
        await _batch(sessions, large, settings)  # the catalogue and the settings now cached
        counts = []
        for events in (small, large):
            with count_statements(sessions) as statements:
                await _batch(sessions, events, settings)
            counts.append(len(statements))
        assert counts == [3, 3]  # places, staff, customers

        settings.cache.clear()
        with count_statements(sessions) as statements:
            await _batch(sessions, large, settings)
        assert len(statements) == 4  # and the settings of both companies, together
    finally:
        await settings.close()


async def test_webhook_only_events_read_no_staff_and_no_customer(sessions: Sessions) -> None:
    world = await _world(sessions)
    p = world.people
    company, first = p.tenant.company_id, p.tenant.branch_ids[0]
    events = [
        _event(kind, company, first, assigned=p.bob, customer_id=world.customer)
        for kind in ("callback.completed", "callback.contacted", "callback.attempt_failed")
    ]
    switched_off = _event(world.inactive, company, first, assigned=p.bob, customer_id=world.customer)
    await _batch(sessions, [*events, switched_off])  # the catalogue cached
    with count_statements(sessions) as statements:
        plans = await _batch(sessions, events)
    assert [[planned.recipient.key for planned in each] for each in plans] == [[f"webhook:{company}"]] * 3
    reads = " ".join(statements)
    assert "staff" not in reads
    assert "customers" not in reads
    assert len(statements) == 2  # the settings (uncached here) and the places

    with count_statements(sessions) as statements:
        assert await _batch(sessions, [switched_off]) == [[]]
        assert await _batch(sessions, []) == []
    assert statements == []


# --- the dispatcher ------------------------------------------------------------------------------


@pytest.fixture
async def recorded(sessions: Sessions) -> AsyncIterator[tuple[NotificationOutbox, list[list[str]]]]:
    """A dispatcher whose resolution records each batch and plans nothing (so it starts no run), with a
    long gathering window and no sweep within the test."""
    batches: list[list[str]] = []

    async def resolve(_session: AsyncSession, events: Sequence[NotifyEvent]) -> list[list[PlannedDelivery]]:
        batches.append([event.event_id for event in events])
        return [[] for _ in events]

    outbox = NotificationOutbox(
        sessions, resolve, cast(Client, None), "unused", sweep_seconds=600, gather_seconds=1.0
    )
    running = asyncio.create_task(outbox.run())
    try:
        yield outbox, batches
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def _step(sessions: Sessions, people: People) -> str:
    """A callback's first step with its outbox row, as a worker writes it."""
    state = callback_state(people, at=AT).model_copy(update={"version": 1, "event_count": 1})
    created = CallbackEvent(seq=1, type="callback.created", at=AT)
    notify = NotifyEvent.for_callback(created, state)
    async with transaction(sessions) as session:
        await write_step(
            session,
            state,
            workflow_id=state.workflow_id,
            escalation=None,
            events=[created],
            outbox=notification_outbox.outbox_rows([(f"notify-{state.id}", 1, notify)]),
        )
    return notify.event_id


async def test_rows_written_just_after_a_kick_are_resolved_in_one_batch(
    sessions: Sessions, recorded: tuple[NotificationOutbox, list[list[str]]]
) -> None:
    outbox, batches = recorded
    people = await notify_tenant(sessions)
    await asyncio.sleep(0.1)  # the first drain, at start, found nothing
    outbox.kick()
    written = [await _step(sessions, people) for _ in range(3)]
    for _ in range(100):
        async with sessions() as session:
            if await notification_outbox.pending(session) == 0:
                break
        await asyncio.sleep(0.05)
    assert batches == [written]
