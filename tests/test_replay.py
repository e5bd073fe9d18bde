"""Replay: every workflow change must stay compatible with the histories of running callbacks.

The committed histories in tests/histories/ were recorded from the main paths below; replaying them with
today's code fails on any non-deterministic change. The same scenarios run again here and their fresh
histories replay too. `RECORD_HISTORIES=1 pytest tests/test_replay.py` records them under the current
HISTORY_VERSION (bump it for a new patched code path; older recordings stay and must still replay).

Everything runs through the payload codec with the suite's key ring (tests/codec_fixtures.py): recordings
since v4 hold only ciphertext, and the older ones, written before the codec, replay because the codec
passes unencrypted payloads through.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.opening import CallbackOpener
from activities.preparation import CallbackPreparer
from activities.step_writer import StepWriter
from codec.payload import META_COMPANY_ID, EncryptionCodec, is_encrypted
from config import Settings
from models.callbacks import (
    AttemptOutcome,
    Cancel,
    ChangePriority,
    Complete,
    MarkContacted,
    Priority,
    RecordAttempt,
)
from models.tables import Customer
from starter.client import CallbackClient, CallbackError
from starter.opening import open_callback
from store.db import transaction
from store.policies import PolicyResolver
from tests.calendar_fixtures import add_absence, at, quiet_week_friday, set_branch_calendar, skip_to
from tests.callback_harness import new_callback, running_worker
from tests.codec_fixtures import CONVERTER, TEST_RING
from tests.factories import Tenant, add_staff, make_tenant, set_callback_policy
from tests.privacy_fixtures import codec_payloads
from worker import SANDBOXED_RUNNER, WORKFLOW_RUNNER, WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
# Bump when the workflow gains a (patched) code path: older recordings stay and must keep replaying.
# v1: the lifecycle alone; v2: with notifications and slot suggestions; v3: recorded on the branches that
# added the staff_deactivated signal, the erasure / dead references and business-hours SLAs (before the
# codec); v4: all of them, payloads encrypted by the codec under tenant workflow ids (`c<company>.…`); v5:
# generation 1 (patches taken without markers) on the hot path (notifications through the outbox, search
# attributes upserted only when they change), the completed callback prepared by its starter as the API does;
# v6: the completed callback opened by the API (its first step written at the edge, the run started from it).
HISTORY_VERSION = "v6"
ENCRYPTED_SINCE = ("v4", "v5", "v6")
Sessions = async_sessionmaker[AsyncSession]
# A scenario returns the workflow id of the callback it ran.
Scenario = Callable[[CallbackClient, WorkflowEnvironment, Tenant, Sessions], Awaitable[str]]
Setup = Callable[[Sessions, Tenant], Awaitable[None]]


async def _completed(
    client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant, sessions: Sessions
) -> str:
    # Opened as the API opens it (since v6): prepared, its first step written at the edge, the run started
    # from that state (v5: prepared at the edge, the first step written by the run).
    request = new_callback(tenant)
    preparer = CallbackPreparer.from_settings(sessions, PolicyResolver(sessions), Settings())
    prepared = await preparer.prepare(request, at=datetime.now(UTC))
    opener = CallbackOpener(preparer, StepWriter(sessions))
    state = (await open_callback(opener, client, request, prepared, "replay-completed")).state
    await client.act(state.workflow_id, MarkContacted())
    await client.act(state.workflow_id, Complete(notes="booked a checkup"))
    return state.workflow_id


async def _expired(
    client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant, sessions: Sessions
) -> str:
    state = (await client.create(new_callback(tenant))).state
    await env.sleep(timedelta(hours=37))
    return state.workflow_id


async def _attempts_then_priority_then_cancel(
    client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant, sessions: Sessions
) -> str:
    state = (await client.create(new_callback(tenant))).state
    for outcome in (AttemptOutcome.NO_ANSWER, AttemptOutcome.BUSY, AttemptOutcome.WRONG_NUMBER):
        await client.act(state.workflow_id, RecordAttempt(outcome=outcome))
    await env.sleep(timedelta(hours=1))
    await client.act(state.workflow_id, ChangePriority(priority=Priority.URGENT))
    await env.sleep(timedelta(hours=2))
    await client.act(state.workflow_id, Cancel(reason="customer reached us by mail"))
    return state.workflow_id


async def _signals_and_refusals(
    client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant, sessions: Sessions
) -> str:
    state = (await client.create(new_callback(tenant, priority=Priority.HIGH))).state
    await client.send(state.workflow_id, MarkContacted())
    with pytest.raises(CallbackError):
        await client.act(state.workflow_id, MarkContacted())  # refused: already contacted
    await client.send(state.workflow_id, Complete(notes="done via signal"))
    await client.handle(state.workflow_id).result()
    return state.workflow_id


async def _staff_deactivated(
    client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant, sessions: Sessions
) -> str:
    state = (await client.create(new_callback(tenant, priority=Priority.HIGH))).state
    holder = state.assigned_to
    assert holder is not None
    assert await client.staff_deactivated(state.workflow_id, holder, actor="admin-key:replay")
    async with asyncio.timeout(20):
        while True:  # the signal is fire-and-forget: wait for the workflow to reassign
            current = await client.state(state.workflow_id)
            if current is not None and current.assigned_to != holder:
                break
            await asyncio.sleep(0.05)
    await client.act(state.workflow_id, Cancel(reason="moved on"))
    return state.workflow_id


async def _erased_then_customer_deleted(
    client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant, sessions: Sessions
) -> str:
    request = new_callback(tenant, customer_id=tenant.customer_ids[0], priority=Priority.HIGH, notes="x")
    state = (await client.create(request)).state
    await client.erase_personal_data(state.workflow_id, actor="replay")
    async with transaction(sessions) as session:
        await session.execute(delete(Customer).where(Customer.id == tenant.customer_ids[0]))
    await client.act(state.workflow_id, MarkContacted())  # the write drops the dead customer reference
    await env.sleep(timedelta(hours=1))
    await client.act(state.workflow_id, Complete(notes="erased, then reached"))
    return state.workflow_id


def _quiet_monday() -> date:
    return quiet_week_friday(datetime.now(UTC)) + timedelta(days=3)


async def _business_hours_setup(sessions: async_sessionmaker[AsyncSession], tenant: Tenant) -> None:
    await set_branch_calendar(sessions, tenant.branch_ids[0])
    await set_callback_policy(sessions, tenant, {"sla_clock": "business_hours"})
    monday = _quiet_monday()
    first, *others = tenant.staff_ids
    await add_absence(sessions, tenant, first, at(monday, 10), at(monday, 10, 30), "other")
    for colleague in others:
        await add_absence(sessions, tenant, colleague, at(monday, 0), at(monday, 12), "vacation")


async def _business_hours(
    client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant, sessions: Sessions
) -> str:
    """Saturday night: waits for Monday's opening to be assigned; the assignee's absence at 10:00 finds
    nobody on shift to take over; the breach at 11:00 waits for a colleague until 12:00; then a priority
    change recomputes the deadline on business hours, and a cancel ends it."""
    monday = _quiet_monday()
    await skip_to(env, at(monday - timedelta(days=2), 23, 0))
    state = (await client.create(new_callback(tenant, priority=Priority.URGENT))).state
    await skip_to(env, at(monday, 12, 30))
    midday = await client.state(state.workflow_id)
    assert midday is not None
    assert [(e.escalated_from, e.escalated_to) for e in midday.escalations] == [
        (tenant.staff_ids[0], tenant.staff_ids[1])
    ]
    assert abs(midday.escalations[0].at - at(monday, 12)) < timedelta(minutes=1)  # waited from 11:00
    await client.act(state.workflow_id, ChangePriority(priority=Priority.HIGH))
    await client.act(state.workflow_id, Cancel(reason="reached by mail"))
    return state.workflow_id


SCENARIOS: dict[str, Scenario] = {
    "completed": _completed,
    "expired": _expired,
    "attempts_priority_cancel": _attempts_then_priority_then_cancel,
    "signals_and_refusals": _signals_and_refusals,
    "staff_deactivated": _staff_deactivated,
    "erased_dead_reference": _erased_then_customer_deleted,
    "business_hours": _business_hours,
}
SETUPS: dict[str, Setup] = {"business_hours": _business_hours_setup}


async def _replay(history: WorkflowHistory) -> None:
    """With the production runner (unsandboxed), and in the sandbox with its default restrictions: the
    production worker no longer runs the sandbox, so this is where a clock read, a random number or an
    I/O call sneaking into a workflow still fails a test."""
    for runner in (WORKFLOW_RUNNER, SANDBOXED_RUNNER):
        replayer = Replayer(workflows=list(WORKFLOWS), data_converter=CONVERTER, workflow_runner=runner)
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{history.workflow_id}: {result.replay_failure}"


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_main_paths_replay_and_can_be_recorded(
    time_skipping_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
    name: str,
) -> None:
    tenant = await make_tenant(sessions)
    for _ in range(3):
        await add_staff(sessions, tenant, services=(0,))
    if name in SETUPS:
        await SETUPS[name](sessions, tenant)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        workflow_id = await SCENARIOS[name](client, time_skipping_env, tenant, sessions)
        history = await client.handle(workflow_id).fetch_history()
    assert len(history.events) > 5
    await _replay(history)
    if os.environ.get("RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{name}.{HISTORY_VERSION}.json").write_text(history.to_json())


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_histories_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"callback-{path.stem}", path.read_text())
    await _replay(history)


@pytest.mark.parametrize(
    "path",
    sorted(p for v in ENCRYPTED_SINCE for p in HISTORIES.glob(f"*.{v}.json")),
    ids=lambda p: p.stem,
)
async def test_recordings_since_the_codec_hold_only_ciphertext(path: Path) -> None:
    """What a history exported from Temporal holds since v3: ciphertext under the company's key (search
    attributes and the SDK's marker bookkeeping aside); the suite's ring reads it all back."""
    history = History(events=WorkflowHistory.from_json(path.stem, path.read_text()).events)
    payloads = codec_payloads(history)
    assert payloads
    assert all(is_encrypted(p) for p in payloads)
    assert {p.metadata[META_COMPANY_ID] for p in payloads} == {b"1"}
    clear = b"".join(p.data for p in await EncryptionCodec(TEST_RING).decode(payloads))
    assert b"Erika Mustermann" in clear
    assert b"Erika" not in history.SerializeToString()


def test_every_main_path_has_a_recording_of_the_current_version() -> None:
    recorded = {p.name.split(".")[0] for p in HISTORIES.glob(f"*.{HISTORY_VERSION}.json")}
    assert recorded == set(SCENARIOS)
