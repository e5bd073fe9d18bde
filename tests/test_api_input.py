"""Bad input through HTTP: each case is a 4xx problem naming the field, writes nothing and starts no
workflow. Every operation of the OpenAPI schema is fuzzed by Schemathesis in tests/test_api_schema.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from models.callbacks import callback_workflow_id
from starter.client import callback_id_for
from tests.api_fixtures import ApiEnv, Sessions, running_api
from tests.factories import Tenant, add_staff, make_tenant
from tests.test_api_callbacks import new_body


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue, api_create_burst=1000) as env:
        yield env


def bad_bodies(tenant: Tenant) -> list[tuple[str, dict[str, Any] | str, int, str]]:
    """(case, body, status, field the problem must name)."""
    return [
        ("invalid phone", new_body(tenant, phone_number="+49 123"), 422, "phone_number"),
        ("not a phone", new_body(tenant, phone_number="call me"), 422, "phone_number"),
        ("unknown priority", new_body(tenant, priority="asap"), 422, "priority"),
        ("1 MB metadata", new_body(tenant, metadata={"blob": "x" * 1_000_000}), 413, "body"),
        ("20 kB metadata", new_body(tenant, metadata={"blob": "x" * 20_000}), 422, "metadata"),
        ("deep metadata", new_body(tenant, metadata={"a": {"b": {"c": {"d": {"e": 1}}}}}), 422, "metadata"),
        ("control char in metadata", new_body(tenant, metadata={"k": "a\x00b"}), 422, "metadata"),
        ("NUL in name", new_body(tenant, customer_name="Erika\x00"), 422, "customer_name"),
        ("escape in notes", new_body(tenant, notes="\x1b[31mred"), 422, "notes"),
        ("bidi override in name", new_body(tenant, customer_name="Erika\u202e"), 422, "customer_name"),
        ("blank name", new_body(tenant, customer_name="   "), 422, "customer_name"),
        ("long name", new_body(tenant, customer_name="E" * 300), 422, "customer_name"),
        ("unknown field", new_body(tenant, colour="blue"), 422, "colour"),
        ("negative branch", new_body(tenant, branch_id=-1), 422, "branch_id"),
        ("huge branch", new_body(tenant, branch_id=2**70), 422, "branch_id"),
        ("missing branch", new_body(tenant, branch_id=999_999), 422, "branch_id"),
        ("missing service", new_body(tenant, service_id=999_999), 422, "service_id"),
        ("bad email", new_body(tenant, email="not-an-email"), 422, "email"),
        (
            "window backwards",
            new_body(
                tenant,
                preferred_time_window={"start": "2030-01-02T10:00:00Z", "end": "2030-01-01T10:00:00Z"},
            ),
            422,
            "preferred_time_window",
        ),
        (
            "window unknown key",
            new_body(
                tenant,
                preferred_time_window={
                    "start": "2030-01-01T10:00:00Z",
                    "end": "2030-01-02T10:00:00Z",
                    "mood": "happy",
                },
            ),
            422,
            "preferred_time_window.mood",
        ),
        (
            "no name",
            {k: v for k, v in new_body(tenant).items() if k != "customer_name"},
            422,
            "customer_name",
        ),
        ("not JSON", "{not json", 422, "body"),
        ("JSON array", "[1, 2]", 422, "body"),
    ]


async def _no_workflow(api: ApiEnv, company_id: int, key: str) -> bool:
    handle = api.callbacks.temporal.get_workflow_handle(
        callback_workflow_id(company_id, callback_id_for(company_id, key))
    )
    try:
        await handle.describe()
    except RPCError as err:
        return err.status == RPCStatusCode.NOT_FOUND
    return False


async def test_bad_input_is_refused_with_a_field_and_changes_nothing(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    await add_staff(sessions, tenant)
    service = api.http(await api.key("service", tenant))
    for index, (case, body, status, field) in enumerate(bad_bodies(tenant)):
        key = f"bad-{index}"
        headers = {"Idempotency-Key": key}
        if isinstance(body, str):
            response = await service.post(
                "/v1/callbacks", content=body, headers={**headers, "Content-Type": "application/json"}
            )
        else:
            response = await service.post("/v1/callbacks", json=body, headers=headers)
        assert response.status_code == status, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json", case
        problem = response.json()
        assert problem["status"] == status
        assert field in [error["field"] for error in problem["errors"]], (case, problem)
        assert all(error["message"] for error in problem["errors"]), case
        assert await _no_workflow(api, tenant.company_id, key), case
    assert await api.callback_count() == 0

    bad_key = await service.post(
        "/v1/callbacks", json=new_body(tenant), headers={"Idempotency-Key": "has space"}
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["field"] == "Idempotency-Key"
    for params, field in [
        ({"page_size": 10_000}, "page_size"),
        ({"page": 0}, "page"),
        ({"sort": "phone_number"}, "sort"),
        ({"status": "lost"}, "status"),
        ({"q": "a\x00b"}, "q"),
        ({"branch_id": 2**70}, "branch_id"),
        ({"created_from": "yesterday"}, "created_from"),
    ]:
        response = await service.get("/v1/callbacks", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["errors"][0]["field"].split(".")[0] == field
    assert await api.callback_count() == 0


async def test_streamed_body_over_the_limit_and_health(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    service = api.http(await api.key("service", tenant))

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold while the body streams in.
        yield b'{"metadata": {"blob": "'
        for _ in range(64):
            yield b"x" * 8192
        yield b'"}}'

    streamed = await service.post(
        "/v1/callbacks", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["errors"] == [{"field": "body", "message": "at most 262144 bytes are accepted"}]
    assert await api.callback_count() == 0

    anonymous = api.http()
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"postgres": "ok", "temporal": "ok"}
    missing = await anonymous.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
