"""A callback its starter prepared shows its first step's search attributes from its start, so its first
step upserts none (rules/first_step.py): one history event, one visibility write and about 6 KiB of the
worker's cache less per open callback. The run takes the preparation's moment as its first step's only
when both clocks agree on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.preparation import CallbackPreparer
from config import Settings
from models import search_attributes
from models.callbacks import CallbackStatus, PreparedCallback
from rules.first_step import EARLIEST, LATEST, first_step_moment
from store.policies import PolicyResolver
from tests.callback_harness import new_callback, row, running_worker
from tests.factories import add_staff, make_tenant

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _prepared(at: datetime | None) -> PreparedCallback:
    return PreparedCallback(settings=Settings().callback_defaults(), candidates=[], at=at)


def test_the_first_step_takes_the_preparations_moment_only_when_the_clocks_agree() -> None:
    assert first_step_moment(None, NOW) == NOW  # the run prepared itself
    assert first_step_moment(_prepared(None), NOW) == NOW  # a starter that did not say when
    for at in (NOW - EARLIEST, NOW - timedelta(seconds=2), NOW, NOW + LATEST):
        assert first_step_moment(_prepared(at), NOW) == at
    for at in (NOW - EARLIEST - timedelta(seconds=1), NOW + LATEST + timedelta(milliseconds=1)):
        assert first_step_moment(_prepared(at), NOW) == NOW


async def _upserts_and_shown(handle: WorkflowHandle[Any, Any]) -> tuple[int, dict[str, Any]]:
    history = await handle.fetch_history()
    upserts = sum(
        e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES for e in history.events
    )
    shown = (await handle.describe()).typed_search_attributes
    return upserts, search_attributes.known_from(shown)


async def test_a_prepared_callback_shows_its_first_step_from_the_start(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant, services=(0,))
    preparer = CallbackPreparer.from_settings(sessions, PolicyResolver(sessions), Settings())
    server_now = await time_skipping_env.get_current_time()
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        request = new_callback(tenant)
        prepared = await preparer.prepare(request, at=server_now)
        state = (await client.create(request, prepared=prepared)).state
        upserts, shown = await _upserts_and_shown(client.handle(state.workflow_id))
        # A preparation an hour old is not the run's moment: it decides on its own clock and upserts.
        stale = await preparer.prepare(new_callback(tenant), at=server_now - timedelta(hours=1))
        late = (await client.create(new_callback(tenant), prepared=stale)).state
        late_upserts, late_shown = await _upserts_and_shown(client.handle(late.workflow_id))

    assert (state.status, state.assigned_to, state.created_at) == (CallbackStatus.ASSIGNED, staff, server_now)
    assert (await row(sessions, state.id)).created_at == server_now
    assert upserts == 0
    expected = {update.key.name: update.value for update in search_attributes.updates_for(state)}
    assert shown == expected
    assert shown["CallbackStatus"] == "assigned"
    assert shown["AssignedStaffId"] == str(staff)
    assert shown["SlaDeadline"] == state.expires_at == server_now + timedelta(hours=24)

    assert late.created_at > server_now
    assert late_upserts == 1
    assert late_shown == {update.key.name: update.value for update in search_attributes.updates_for(late)}
