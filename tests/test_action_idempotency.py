"""Staff actions are idempotent and every call into Temporal has a deadline (issue 19, defect 3).

An action sent with an Idempotency-Key is an Update whose id derives from the key: a retry answers the first
call's outcome and applies nothing twice (also after the action finished the callback). A slow Update
answers 504 with Retry-After and is applied later (Temporal refusing or unreachable:
test_temporal_refusals.py). Against PostgreSQL and real Temporal servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from models.tables import CallbackRequest
from tests.api_fixtures import ApiEnv, Sessions, assert_problem, callback_body, running_api, serve_api
from tests.console_fixtures import http_sign_in
from tests.factories import add_staff, make_tenant


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(
        time_skipping_env.client, sessions, task_queue, api_temporal_timeout_seconds=2.0
    ) as env:
        yield env


@contextlib.asynccontextmanager
async def row_locked(sessions: Sessions, callback_id: str) -> AsyncIterator[None]:
    """Hold the callback's row lock: the workflow's next write waits, so its Update stays in flight."""
    async with sessions() as session, session.begin():
        await session.execute(
            select(CallbackRequest.id).where(CallbackRequest.id == UUID(callback_id)).with_for_update()
        )
        yield


async def eventually(client: Any, path: str, check: Any) -> dict[str, Any]:
    for _ in range(200):
        found: dict[str, Any] = (await client.get(path)).json()
        if check(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never true: {found}")


async def test_a_retried_action_is_applied_once(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    created = (await worker.post("/v1/callbacks", json=callback_body(tenant))).json()
    path = f"/v1/callbacks/{created['id']}"

    # Three sends of one failed attempt (a client retrying): one attempt, and so no false escalation
    # for "3 failed attempts".
    first = await worker.post(
        f"{path}/attempts", json={"outcome": "busy"}, headers={"Idempotency-Key": "a-1"}
    )
    assert first.status_code == 200, first.text
    again = await asyncio.gather(
        *(
            worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers={"Idempotency-Key": "a-1"})
            for _ in range(2)
        )
    )
    assert [r.status_code for r in again] == [200, 200]
    detail = (await worker.get(path)).json()
    assert (detail["contact_attempts"], detail["escalation_count"]) == (1, 0)
    # Another key is another attempt; two sends of it at once are still one.
    pair = await asyncio.gather(
        *(
            worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers={"Idempotency-Key": "a-2"})
            for _ in range(2)
        )
    )
    assert {r.json()["contact_attempts"] for r in pair} == {2}

    # The console's form carries a nonce per rendering: the same form posted twice is one action.
    browser = api.http()
    await http_sign_in(browser, await api.key("staff", tenant, staff_id=staff))
    page = await browser.get(f"/console/callbacks/{created['id']}")
    form = {
        "csrf": _field(page.text, "csrf"),
        "submission": _field(page.text, "submission"),
        "outcome": "no_answer",
    }
    for _ in range(2):
        posted = await browser.post(f"/console/callbacks/{created['id']}/attempt", data=form)
        assert posted.status_code == 303, posted.text
    assert (await worker.get(path)).json()["contact_attempts"] == 3

    # A retried `complete` after it closed the callback (its workflow has finished) answers the outcome;
    # a new `complete` is refused with the state named.
    done = await worker.post(f"{path}/complete", json={"notes": "booked"}, headers={"Idempotency-Key": "c-1"})
    assert done.json()["status"] == "completed"
    retried = await worker.post(
        f"{path}/complete", json={"notes": "booked"}, headers={"Idempotency-Key": "c-1"}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "completed"
    fresh = await worker.post(f"{path}/complete", json={"notes": "x"}, headers={"Idempotency-Key": "c-2"})
    assert fresh.status_code == 409
    assert "completed" in fresh.json()["detail"]
    events = [e["type"] for e in (await worker.get(path)).json()["events"]]
    assert events.count("callback.attempt_failed") == 3
    assert events.count("callback.completed") == 1


def _field(html: str, name: str) -> str:
    import re

    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found is not None, name
    return found.group(1)


async def test_a_slow_update_answers_504_and_a_retry_with_the_key_is_safe(
    api: ApiEnv, sessions: Sessions
) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    created = (await worker.post("/v1/callbacks", json=callback_body(tenant))).json()
    path = f"/v1/callbacks/{created['id']}"
    key = {"Idempotency-Key": "slow-1"}

    async with row_locked(sessions, created["id"]):
        slow = await worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers=key)
        problem = assert_problem(slow, 504, "engine-timeout")
        assert "may still be applied" in problem["detail"]
        assert "same Idempotency-Key is safe" in problem["detail"]
    # Accepted before the deadline, the Update is applied once the write gets through.
    await eventually(worker, path, lambda found: found["contact_attempts"] == 1)
    retried = await worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers=key)
    assert retried.status_code == 200, retried.text
    assert retried.json()["contact_attempts"] == 1


async def test_the_cli_sends_its_idempotency_key(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    key = await api.key("staff", tenant, staff_id=staff)
    created = (await api.http(key).post("/v1/callbacks", json=callback_body(tenant))).json()
    async with serve_api(api.app) as url:
        env = {**os.environ, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": key}
        for _ in range(2):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "cli.main", "callbacks", "attempt", created["id"], "--outcome", "voicemail"),
                *("--idempotency-key", "cli-attempt-1", "--json"),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await process.communicate()
            assert process.returncode == 0, err.decode()
    assert (await api.http(key).get(f"/v1/callbacks/{created['id']}")).json()["contact_attempts"] == 1


async def test_a_reused_key_with_another_request_is_refused(api: ApiEnv, sessions: Sessions) -> None:
    """Another action or other arguments under a used Idempotency-Key answer 422 on the header and apply
    nothing, never the first request's outcome; the first request itself still answers its outcome."""
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    worker = api.http(await api.key("staff", tenant, staff_id=staff))
    created = (await worker.post("/v1/callbacks", json=callback_body(tenant))).json()
    path = f"/v1/callbacks/{created['id']}"
    key = {"Idempotency-Key": "r-1"}
    first = await worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers=key)
    assert first.status_code == 200, first.text

    for action, arguments in (("attempts", {"outcome": "voicemail"}), ("priority", {"priority": "urgent"})):
        reused = await worker.post(f"{path}/{action}", json=arguments, headers=key)
        assert reused.status_code == 422, reused.text
        assert reused.json()["type"] == "/problems/idempotency-key-reused"
        assert [e["field"] for e in reused.json()["errors"]] == ["Idempotency-Key"]
        assert "different request" in reused.json()["errors"][0]["message"]
    again = await worker.post(f"{path}/attempts", json={"outcome": "busy"}, headers=key)
    assert (again.status_code, again.json()["contact_attempts"]) == (200, 1)
    detail = (await worker.get(path)).json()
    assert (detail["contact_attempts"], detail["priority"]) == (1, "normal")

    # Two different requests under one new key at once: one is applied, the other refused.
    pair = await asyncio.gather(
        *(
            worker.post(f"{path}/attempts", json={"outcome": outcome}, headers={"Idempotency-Key": "r-2"})
            for outcome in ("busy", "no_answer")
        )
    )
    assert sorted(r.status_code for r in pair) == [200, 422], [r.text for r in pair]
    assert (await worker.get(path)).json()["contact_attempts"] == 2

    # Once the action finished the callback (its workflow has ended), still 422, not the state's 409.
    done_key = {"Idempotency-Key": "r-3"}
    done = await worker.post(f"{path}/complete", json={"notes": "booked"}, headers=done_key)
    assert done.json()["status"] == "completed"
    for action, arguments in (("complete", {"notes": "something else"}), ("cancel", {})):
        late = await worker.post(f"{path}/{action}", json=arguments, headers=done_key)
        assert late.status_code == 422, late.text
        assert late.json()["type"] == "/problems/idempotency-key-reused"
    retried = await worker.post(f"{path}/complete", json={"notes": "booked"}, headers=done_key)
    assert (retried.status_code, retried.json()["status"]) == (200, "completed")

    # Creation: a reused key with another body is refused on the header too.
    create_key = {"Idempotency-Key": "r-create"}
    assert (
        await worker.post("/v1/callbacks", json=callback_body(tenant), headers=create_key)
    ).status_code == 201
    other = await worker.post(
        "/v1/callbacks", json={**callback_body(tenant), "customer_name": "Someone Else"}, headers=create_key
    )
    assert other.status_code == 422, other.text
    assert [e["field"] for e in other.json()["errors"]] == ["Idempotency-Key"]


async def test_the_cli_names_a_reused_key(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    key = await api.key("staff", tenant, staff_id=staff)
    created = (await api.http(key).post("/v1/callbacks", json=callback_body(tenant))).json()
    async with serve_api(api.app) as url:
        env = {**os.environ, "CALLBACKS_API_URL": url, "CALLBACKS_API_KEY": key}
        outcomes = []
        for outcome in ("voicemail", "busy"):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "cli.main", "callbacks", "attempt", created["id"], "--outcome", outcome),
                *("--idempotency-key", "cli-attempt-1", "--json"),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await process.communicate()
            outcomes.append((process.returncode, err.decode()))
    assert outcomes[0][0] == 0, outcomes[0][1]
    returncode, message = outcomes[1]
    assert returncode != 0
    assert "Idempotency-Key reused (422)" in message
    assert "Idempotency-Key: this Idempotency-Key was already used for a different request" in message
    assert (await api.http(key).get(f"/v1/callbacks/{created['id']}")).json()["contact_attempts"] == 1
