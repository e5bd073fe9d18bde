"""Bad input through HTTP: each case is a 4xx problem naming the field, writes nothing and starts no
workflow; then a bounded fuzz of every operation from the OpenAPI schema that must never see a 5xx."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


# --- fuzzing from the OpenAPI schema -------------------------------------------------------------

FUZZ_EXAMPLES = 300
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
NASTY_TEXT = st.text(max_size=30) | st.sampled_from(["", "0", "-1", "9" * 30, "\x00", "%", "../", "null"])


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            found.append((method.upper(), path, operation))
    return found


# Real ids of the test's tenant, mixed into generated ids so that requests also reach past the lookups.
KNOWN_INTS: list[int] = [1]
KNOWN_UUIDS: list[str] = [str(uuid.UUID(int=1))]


def from_schema(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values a JSON schema (OpenAPI 3.1 flavour) allows: the types, bounds, enums, formats and required
    keys FastAPI emits. Deliberately small; anything it does not model falls back to arbitrary JSON."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return from_schema(components["schemas"][name], components, depth)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of(*(from_schema(option, components, depth) for option in schema[key]))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return from_schema(schema["allOf"][0], components, depth)
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.sampled_from(KNOWN_INTS) | st.integers(
            min_value=schema.get("minimum", schema.get("exclusiveMinimum", -(2**40) - 1) + 1),
            max_value=schema.get("maximum", schema.get("exclusiveMaximum", 2**40 + 1) - 1),
        )
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, min_value=schema.get("minimum"))
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            return st.sampled_from(KNOWN_UUIDS) | st.uuids().map(str)
        if fmt == "date-time":
            return st.datetimes(timezones=st.sampled_from([UTC, None])).map(lambda d: d.isoformat())
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if kind == "array":
        items = from_schema(schema.get("items", {}), components, depth + 1)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "object" or "properties" in schema:
        if depth > 3:
            return st.just({})
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {
                name: from_schema(sub, components, depth + 1)
                for name, sub in properties.items()
                if name in required
            },
            optional={
                name: from_schema(sub, components, depth + 1)
                for name, sub in properties.items()
                if name not in required
            },
        )
    return JSON


def _value(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly values the schema allows, sometimes anything: both must be answered without a 5xx."""
    return st.one_of(from_schema(schema, components), NASTY_TEXT)


def _request(spec: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    components = spec.get("components", {})

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        method, path, operation = draw(st.sampled_from(_operations(spec)))
        params: dict[str, Any] = {}
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            if parameter["in"] == "path":
                value = draw(_value(schema, components))
                path = path.replace("{" + parameter["name"] + "}", quote(str(value), safe=""))
            elif parameter["in"] == "query" and (parameter.get("required") or draw(st.booleans())):
                value = draw(_value(schema, components))
                params[parameter["name"]] = (
                    value if isinstance(value, (str, int, float, list)) else str(value)
                )
        body: Any = None
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content is not None:
            body = draw(st.one_of(from_schema(content["schema"], components), JSON))
        return {"method": method, "path": path, "params": params, "body": body}

    return build()


async def test_fuzz_every_operation_never_answers_5xx(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    staff = await add_staff(sessions, tenant)
    admin = api.http(await api.key("admin", tenant))
    spec = (await admin.get("/openapi.json")).json()
    existing = [(await admin.post("/v1/callbacks", json=new_body(tenant))).json()["id"] for _ in range(3)]
    KNOWN_INTS[:] = [tenant.company_id, *tenant.branch_ids, *tenant.service_ids, *tenant.customer_ids]
    KNOWN_UUIDS[:] = [str(staff), *existing]
    requests: list[dict[str, Any]] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_request(spec))
    def collect(request: dict[str, Any]) -> None:
        requests.append(request)

    collect()
    # A few requests that reach the deepest code paths with real ids.
    callback = (await admin.post("/v1/callbacks", json=new_body(tenant))).json()["id"]
    requests += [
        {"method": "POST", "path": f"/v1/callbacks/{callback}/{action}", "params": {}, "body": body}
        for action, body in [
            ("attempts", {"outcome": "busy", "notes": "\ud800"}),
            ("priority", {"priority": 1}),
        ]
    ]
    seen: dict[int, int] = {}
    for request in requests:
        content = json.dumps(request["body"]) if request["body"] is not None else None
        response = await admin.request(
            request["method"],
            request["path"],
            params=request["params"],
            content=content,
            headers={"Content-Type": "application/json"} if content is not None else {},
        )
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (request, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", request
    assert len(requests) >= FUZZ_EXAMPLES
    assert any(code < 300 for code in seen), seen  # some fuzzed requests were valid and went through
    assert uuid.UUID(callback)


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
