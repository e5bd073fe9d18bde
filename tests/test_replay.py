"""Replay: every workflow change must stay compatible with the histories of running callbacks.

The committed histories in tests/histories/ were recorded from the main paths below; replaying them with
today's code fails on any non-deterministic change. The same scenarios run again here and their fresh
histories replay too. `RECORD_HISTORIES=1 pytest tests/test_replay.py` records them under the current
HISTORY_VERSION (bump it for a new patched code path; older recordings stay and must still replay).

Everything runs through the payload codec with the suite's key ring (tests/codec_fixtures.py): recordings
since v3 hold only ciphertext, and the older ones, written before the codec, replay because the codec
passes unencrypted payloads through.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from codec.payload import META_COMPANY_ID, EncryptionCodec, is_encrypted
from models.callbacks import (
    AttemptOutcome,
    Cancel,
    ChangePriority,
    Complete,
    MarkContacted,
    Priority,
    RecordAttempt,
)
from starter.client import CallbackClient, CallbackError
from tests.callback_harness import new_callback, running_worker
from tests.codec_fixtures import CONVERTER, TEST_RING
from tests.factories import Tenant, add_staff, make_tenant
from tests.privacy_fixtures import codec_payloads
from worker import WORKFLOW_RUNNER, WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
# Bump when the workflow gains a (patched) code path: older recordings stay and must keep replaying.
# v1: the lifecycle alone; v2: with notifications and slot suggestions; v3: payloads encrypted by the codec,
# under tenant workflow ids (`c<company>.callback-<id>`).
HISTORY_VERSION = "v3"
# A scenario returns the workflow id of the callback it ran.
Scenario = Callable[[CallbackClient, WorkflowEnvironment, Tenant], Awaitable[str]]


async def _completed(client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant) -> str:
    state = (await client.create(new_callback(tenant), idempotency_key="replay-completed")).state
    await client.act(state.workflow_id, MarkContacted())
    await client.act(state.workflow_id, Complete(notes="booked a checkup"))
    return state.workflow_id


async def _expired(client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant) -> str:
    state = (await client.create(new_callback(tenant))).state
    await env.sleep(timedelta(hours=37))
    return state.workflow_id


async def _attempts_then_priority_then_cancel(
    client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant
) -> str:
    state = (await client.create(new_callback(tenant))).state
    for outcome in (AttemptOutcome.NO_ANSWER, AttemptOutcome.BUSY, AttemptOutcome.WRONG_NUMBER):
        await client.act(state.workflow_id, RecordAttempt(outcome=outcome))
    await env.sleep(timedelta(hours=1))
    await client.act(state.workflow_id, ChangePriority(priority=Priority.URGENT))
    await env.sleep(timedelta(hours=2))
    await client.act(state.workflow_id, Cancel(reason="customer reached us by mail"))
    return state.workflow_id


async def _signals_and_refusals(client: CallbackClient, env: WorkflowEnvironment, tenant: Tenant) -> str:
    state = (await client.create(new_callback(tenant, priority=Priority.HIGH))).state
    await client.send(state.workflow_id, MarkContacted())
    with pytest.raises(CallbackError):
        await client.act(state.workflow_id, MarkContacted())  # refused: already contacted
    await client.send(state.workflow_id, Complete(notes="done via signal"))
    await client.handle(state.workflow_id).result()
    return state.workflow_id


SCENARIOS: dict[str, Scenario] = {
    "completed": _completed,
    "expired": _expired,
    "attempts_priority_cancel": _attempts_then_priority_then_cancel,
    "signals_and_refusals": _signals_and_refusals,
}


async def _replay(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=CONVERTER, workflow_runner=WORKFLOW_RUNNER)
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
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        workflow_id = await SCENARIOS[name](client, time_skipping_env, tenant)
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


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.v3.json")), ids=lambda p: p.stem)
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
