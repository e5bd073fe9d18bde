"""Every failure ends in a defined state (issue 19): a database step of the callback workflow that keeps
failing for a transient reason is retried with a capped backoff, the callback shows as stuck while it
fails (the `stuck` query, the `CallbackStuck` search attribute, the API, the console and the
`callbacks_stuck_workflows` gauge), and all of that clears once the step gets through. After a day of
failures the workflow stops retrying on its own and waits, still marked, for an operator's `retry_stuck`.

The failure is PostgreSQL's own: a trigger answers every write of the callback's row with a serialization
failure (SQLSTATE 40001, which is worth retrying) while the callback is listed in `failing_writes`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from api.metrics import ReadModelGauges
from models import search_attributes
from models.callbacks import MarkContacted, callback_workflow_id
from models.stuck import StuckMark, StuckStep
from models.tables import CallbackStuckRow
from rules import stuck as rules
from store.db import transaction
from telemetry import metrics
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.codec_fixtures import CONVERTER
from tests.console_fixtures import http_sign_in
from tests.factories import add_staff, make_tenant
from worker import WORKFLOW_RUNNER, WORKFLOWS

FAILING_WRITES = [
    "CREATE TABLE failing_writes (callback_id uuid PRIMARY KEY)",
    """CREATE FUNCTION fail_writes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM failing_writes WHERE callback_id = NEW.id) THEN
            RAISE EXCEPTION 'simulated outage' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER fail_writes BEFORE UPDATE ON callback_requests
    FOR EACH ROW EXECUTE FUNCTION fail_writes()""",
]


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with transaction(sessions) as session:
        for statement in FAILING_WRITES:
            await session.execute(text(statement))
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def failing(sessions: Sessions, callback_id: str, fail: bool) -> None:
    async with transaction(sessions) as session:
        if fail:
            await session.execute(text("INSERT INTO failing_writes VALUES (:id)"), {"id": callback_id})
        else:
            await session.execute(
                text("DELETE FROM failing_writes WHERE callback_id = :id"), {"id": callback_id}
            )


async def stuck_row(sessions: Sessions, callback_id: str) -> CallbackStuckRow | None:
    async with sessions() as session:
        return await session.scalar(
            select(CallbackStuckRow).where(CallbackStuckRow.callback_id == uuid.UUID(callback_id))
        )


async def gauge(sessions: Sessions, step: str, state: str) -> float:
    await ReadModelGauges(min_interval=0).refresh(sessions)
    return metrics.STUCK_WORKFLOWS.labels(step, state)._value.get()  # type: ignore[no-any-return]


async def search_attribute(env: ApiEnv, workflow_id: str) -> bool | None:
    described = await env.callbacks.handle(workflow_id).describe()
    return described.typed_search_attributes.get(search_attributes.CALLBACK_STUCK)


async def created(env: ApiEnv, sessions: Sessions) -> tuple[dict[str, Any], str]:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    admin = await env.key("admin", tenant)
    body = {"branch_id": tenant.branch_ids[0], "customer_name": "Erika", "phone_number": "+49 30 1234567"}
    answer = await env.http(admin).post("/v1/callbacks", json={**body, "preferred_staff_id": str(staff)})
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "assigned"
    found = answer.json()
    return {**found, "workflow_id": callback_workflow_id(found["company_id"], uuid.UUID(found["id"]))}, admin


async def test_a_step_that_keeps_failing_shows_as_stuck_until_it_gets_through(
    api: ApiEnv, sessions: Sessions, time_skipping_env: WorkflowEnvironment
) -> None:
    callback, admin = await created(api, sessions)
    workflow_id, path = callback["workflow_id"], f"/v1/callbacks/{callback['id']}"
    await failing(sessions, callback["id"], True)
    await api.callbacks.send(workflow_id, MarkContacted(actor="anna"))

    # A few failed rounds are not stuck yet: a blip stays invisible.
    await time_skipping_env.sleep(rules.FIRST_BACKOFF)
    assert await api.callbacks.stuck(workflow_id) is None
    assert await stuck_row(sessions, callback["id"]) is None

    await time_skipping_env.sleep(timedelta(minutes=2))
    mark = await api.callbacks.stuck(workflow_id)
    assert isinstance(mark, StuckMark)
    assert (mark.step, mark.gave_up_at) == (StuckStep.PERSIST, None)
    assert mark.failed_rounds >= rules.STUCK_AFTER_ROUNDS
    assert "outage" not in mark.error  # the failure's type only, never its text
    assert await search_attribute(api, workflow_id) is True
    row = await stuck_row(sessions, callback["id"])
    assert row is not None
    assert (row.step, row.gave_up_at) == ("persist", None)
    assert await gauge(sessions, "persist", "retrying") == 1

    # The API shows it, and refuses staff actions meanwhile (they could not be written).
    shown = (await api.http(admin).get(path)).json()
    assert (shown["status"], shown["stuck"]["step"], shown["stuck"]["gave_up_at"]) == (
        "assigned",
        "persist",
        None,
    )
    refused = await api.http(admin).post(f"{path}/priority", json={"priority": "urgent"})
    assert refused.status_code == 503, refused.text
    assert refused.json()["type"] == "/problems/callback-stuck"
    assert int(refused.headers["retry-after"]) > 0
    # The console: a badge in the queue and on the detail page, with what is going on.
    browser = api.http()
    await http_sign_in(browser, admin)
    queue = (await browser.get("/console/queue")).text
    assert re.search(r'class="badge danger stuck" data-stuck="persist"', queue)
    detail = (
        await browser.get(f"/console/callbacks/{callback['id']}", headers={"Accept-Language": "de"})
    ).text
    assert 'data-stuck="persist"' in detail
    assert "Die Engine versucht es weiter" in detail

    # The outage ends: the next round (at most MAX_BACKOFF later) gets through and everything clears.
    await failing(sessions, callback["id"], False)
    await time_skipping_env.sleep(rules.MAX_BACKOFF + timedelta(minutes=1))
    assert await api.callbacks.stuck(workflow_id) is None
    assert await search_attribute(api, workflow_id) is False
    assert await stuck_row(sessions, callback["id"]) is None
    assert await gauge(sessions, "persist", "retrying") == 0
    after = (await api.http(admin).get(path)).json()
    assert (after["status"], after["stuck"]) == ("contacted", None)
    assert "data-stuck" not in (await browser.get("/console/queue")).text
    priority = await api.http(admin).post(f"{path}/priority", json={"priority": "urgent"})
    assert priority.status_code == 200, priority.text
    await replays(api, workflow_id)


async def test_after_a_day_of_failures_it_waits_for_an_operator(
    api: ApiEnv, sessions: Sessions, time_skipping_env: WorkflowEnvironment
) -> None:
    callback, _ = await created(api, sessions)
    workflow_id = callback["workflow_id"]
    await failing(sessions, callback["id"], True)
    await api.callbacks.send(workflow_id, MarkContacted(actor="anna"))

    await time_skipping_env.sleep(rules.GIVE_UP_AFTER + rules.MAX_BACKOFF)
    mark = await api.callbacks.stuck(workflow_id)
    assert mark is not None
    assert mark.gave_up_at is not None
    row = await stuck_row(sessions, callback["id"])
    assert row is not None
    assert row.gave_up_at is not None
    assert await gauge(sessions, "persist", "gave_up") == 1
    assert await search_attribute(api, workflow_id) is True
    # A defined end: no more tries on its own, however long it waits.
    await time_skipping_env.sleep(timedelta(hours=6))
    assert (await api.callbacks.stuck(workflow_id)) == mark

    # The operator fixes the cause and sends `retry_stuck`: the step gets through at once.
    await failing(sessions, callback["id"], False)
    await api.callbacks.retry_stuck(workflow_id)
    await time_skipping_env.sleep(timedelta(seconds=1))
    assert await api.callbacks.stuck(workflow_id) is None
    assert await search_attribute(api, workflow_id) is False
    assert await stuck_row(sessions, callback["id"]) is None
    state = await api.callbacks.state(workflow_id)
    assert state is not None
    assert state.status.value == "contacted"
    await replays(api, workflow_id)


async def replays(env: ApiEnv, workflow_id: str) -> None:
    """The stuck path's commands (behind `stuck-flag-v1`) replay as they were recorded."""
    history = await env.callbacks.handle(workflow_id).fetch_history()
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=CONVERTER, workflow_runner=WORKFLOW_RUNNER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def test_the_backoff_doubles_up_to_its_cap_and_the_thresholds_are_either_or() -> None:
    assert [rules.backoff(n).total_seconds() for n in range(1, 6)] == [2, 4, 8, 16, 32]
    assert rules.backoff(40) == rules.MAX_BACKOFF
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert not rules.is_stuck(1, start, start + timedelta(seconds=10))
    assert rules.is_stuck(rules.STUCK_AFTER_ROUNDS, start, start + timedelta(seconds=10))
    assert rules.is_stuck(1, start, start + rules.STUCK_AFTER)
    assert not rules.gives_up(start, start + rules.GIVE_UP_AFTER - timedelta(seconds=1))
    assert rules.gives_up(start, start + rules.GIVE_UP_AFTER)
