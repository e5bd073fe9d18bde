"""Every row of the staff-action table (rules/staff_actions.py), allowed and refused, through real Updates.

A refused action must fail fast with the current state in its message and leave the row untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.workflow import _Definition

from models.callbacks import (
    Assign,
    AttemptOutcome,
    Cancel,
    ChangePriority,
    Complete,
    Escalate,
    MarkContacted,
    Priority,
    RecordAttempt,
    StaffAction,
    StaffDeactivated,
)
from rules.staff_actions import STAFF_ACTIONS
from rules.transitions import ALLOWED_FROM
from starter.client import CallbackClient, CallbackError, StaffCommand
from tests.callback_harness import new_callback, row, running_worker
from tests.factories import Tenant, add_staff, make_tenant, set_callback_policy
from workflows.callback import CallbackWorkflow

Sessions = async_sessionmaker[AsyncSession]

# How to bring a fresh callback (created pending: auto-assign is off) into each state.
Setup = Callable[[CallbackClient, str, uuid.UUID, WorkflowEnvironment], Awaitable[None]]


async def _pending(client: CallbackClient, wid: str, staff: uuid.UUID, env: WorkflowEnvironment) -> None:
    return None


async def _assigned(client: CallbackClient, wid: str, staff: uuid.UUID, env: WorkflowEnvironment) -> None:
    await client.act(wid, Assign(staff_id=staff))


async def _contacted(client: CallbackClient, wid: str, staff: uuid.UUID, env: WorkflowEnvironment) -> None:
    await client.act(wid, Assign(staff_id=staff))
    await client.act(wid, MarkContacted())


async def _completed(client: CallbackClient, wid: str, staff: uuid.UUID, env: WorkflowEnvironment) -> None:
    await client.act(wid, Assign(staff_id=staff))
    await client.act(wid, Complete(notes="called back, booked a checkup"))


async def _cancelled(client: CallbackClient, wid: str, staff: uuid.UUID, env: WorkflowEnvironment) -> None:
    await client.act(wid, Cancel(reason="customer called again"))


async def _expired(client: CallbackClient, wid: str, staff: uuid.UUID, env: WorkflowEnvironment) -> None:
    await env.sleep(timedelta(hours=37))  # skips through the whole SLA clock of a normal callback


SETUPS: dict[str, Setup] = {
    "pending": _pending,
    "assigned": _assigned,
    "contacted": _contacted,
    "completed": _completed,
    "cancelled": _cancelled,
    "expired": _expired,
}


def _command(action: StaffAction, staff: uuid.UUID) -> StaffCommand:
    return {
        StaffAction.ASSIGN: Assign(staff_id=staff, actor="staff:test"),
        StaffAction.MARK_CONTACTED: MarkContacted(actor="staff:test"),
        StaffAction.RECORD_ATTEMPT: RecordAttempt(outcome=AttemptOutcome.BUSY, actor="staff:test"),
        StaffAction.COMPLETE: Complete(notes="done", actor="staff:test"),
        StaffAction.CANCEL: Cancel(reason="duplicate", actor="staff:test"),
        StaffAction.ESCALATE: Escalate(reason="customer upset", actor="staff:test"),
        StaffAction.CHANGE_PRIORITY: ChangePriority(priority=Priority.URGENT, actor="staff:test"),
    }[action]


EXPECTED_STATUS = {
    StaffAction.MARK_CONTACTED: "contacted",
    StaffAction.COMPLETE: "completed",
    StaffAction.CANCEL: "cancelled",
}


async def _tenant(sessions: Sessions) -> tuple[Tenant, uuid.UUID, uuid.UUID]:
    tenant = await make_tenant(sessions)
    await set_callback_policy(sessions, tenant, {"auto_assign": False})
    first = await add_staff(sessions, tenant)
    second = await add_staff(sessions, tenant)
    return tenant, first, second


def test_every_action_is_an_update_with_a_validator_and_a_signal() -> None:
    """The handlers generated from the table look to the SDK exactly like the written-out ones did."""
    definition = _Definition.must_from_class(CallbackWorkflow)
    for action, spec in STAFF_ACTIONS.items():
        update, signal = definition.updates[action.value], definition.signals[action.value]
        assert update.arg_types == [spec.command]
        assert signal.arg_types == [spec.command]
        assert update.validator is not None
    # Besides the staff actions: the create Update and the erasure of personal data (not a staff action),
    # and the engine's own signals: a staff member was deactivated; an operator retries a stuck callback.
    assert set(definition.updates) == {*STAFF_ACTIONS, "created", "erase_personal_data"}
    assert set(definition.signals) == {*STAFF_ACTIONS, "staff_deactivated", "retry_stuck"}
    assert definition.signals["staff_deactivated"].arg_types == [StaffDeactivated]


@pytest.mark.parametrize("status", list(SETUPS))
async def test_each_action_in_each_state(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str, status: str
) -> None:
    tenant, first, second = await _tenant(sessions)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        for action in StaffAction:
            created = await client.create(new_callback(tenant))
            cid, wid = created.state.id, created.state.workflow_id
            await SETUPS[status](client, wid, first, time_skipping_env)
            before = await row(sessions, cid)
            assert before.status == status

            allowed = status in ALLOWED_FROM[action]
            if allowed:
                state = await client.act(wid, _command(action, second))
                after = await row(sessions, cid)  # read-your-writes: the row shows it already
                assert after.version == before.version + 1 == state.version
                assert after.status == EXPECTED_STATUS.get(action, state.status.value)
                if action is StaffAction.ASSIGN:
                    assert after.assigned_to == second
                if action is StaffAction.RECORD_ATTEMPT:
                    assert after.contact_attempts == 1
                if action is StaffAction.ESCALATE:
                    assert after.escalation_count == 1
                if action is StaffAction.CHANGE_PRIORITY:
                    assert after.priority == "urgent"
                    assert after.expires_at == after.created_at + timedelta(hours=2)
            else:
                with pytest.raises(CallbackError) as refused:
                    await client.act(wid, _command(action, second))
                assert refused.value.kind == "TransitionRefused"
                assert f"the callback is {status}" in str(refused.value)
                after = await row(sessions, cid)
                assert (after.version, after.status, after.assigned_to, after.updated_at) == (
                    before.version,
                    before.status,
                    before.assigned_to,
                    before.updated_at,
                )


async def test_assign_refuses_staff_of_another_company_or_inactive(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant, _, _ = await _tenant(sessions)
    inactive = await add_staff(sessions, tenant, active=False)
    other = await make_tenant(sessions, name="Other")
    foreign = await add_staff(sessions, other)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant))).state
        cid, wid = state.id, state.workflow_id
        for staff in (inactive, foreign):
            with pytest.raises(CallbackError) as refused:
                await client.act(wid, Assign(staff_id=staff))
            assert refused.value.kind == "InvalidStaff"
        stored = await row(sessions, cid)
        assert (stored.status, stored.assigned_to, stored.version) == ("pending", None, 1)


async def test_signals_apply_the_same_transitions(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant, first, _ = await _tenant(sessions)
    async with running_worker(time_skipping_env.client, sessions, task_queue) as client:
        state = (await client.create(new_callback(tenant))).state
        cid, wid = state.id, state.workflow_id
        await client.send(wid, Assign(staff_id=first))
        await client.send(wid, MarkContacted())
        await client.send(wid, Complete(notes="reached by phone"))  # refused? no: contacted → completed
        await client.send(wid, Cancel(reason="too late"))  # refused (completed): logged, workflow carries on
        final = await client.handle(wid).result()  # a signal answers nothing; the workflow ends completed
        assert final.status.value == "completed"
        assert final.completion_notes == "reached by phone"
        stored = await row(sessions, cid)
        assert (stored.status, stored.assigned_to) == ("completed", first)
