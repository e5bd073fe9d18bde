"""Personal data stays ours (issue 16), on the Temporal dev server with the real API and worker: a callback
created with a known name, phone, email and notes leaves nothing readable in Temporal — neither for
`temporal workflow show/describe` nor for a raw client — while the codec server gives it back to the
company's staff and admins, refuses every other key (403) and audits every attempt."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
from typing import Any

import httpx
from sqlalchemy import select
from temporalio.api.history.v1 import History
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionResponse
from temporalio.testing import WorkflowEnvironment

from api.codec_server import payloads_json
from codec.payload import META_COMPANY_ID, is_encrypted
from devstack.temporal import binary
from models.tables import CodecAudit
from tests.api_fixtures import ApiEnv, Sessions, running_api, serve_api
from tests.console_fixtures import http_sign_in
from tests.factories import Tenant, make_tenant
from tests.privacy_fixtures import (
    COMPLETION,
    E164,
    EMAIL,
    NAME,
    NOTES,
    PHONE,
    SECRETS,
    codec_payloads,
    raw_history_and_description,
)

UI = "http://127.0.0.1:8233"


async def temporal_cli(env: WorkflowEnvironment, *args: str) -> str:
    """The Temporal CLI as an operator runs it against the server (no codec unless given)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    process = await asyncio.create_subprocess_exec(
        binary("temporal"),
        *args,
        "--address",
        env.client.service_client.config.target_host,
        "--namespace",
        env.client.namespace,
        env=clean,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def _callback(api: ApiEnv, tenant: Tenant, key: str) -> str:
    """A callback with every kind of personal data, contacted and completed; returns its workflow id."""
    http = api.http(key)
    created = await http.post(
        "/v1/callbacks",
        json={
            "branch_id": tenant.branch_ids[0],
            "customer_name": NAME,
            "phone_number": PHONE,
            "email": EMAIL,
            "notes": NOTES,
        },
    )
    assert created.status_code == 201, created.text
    callback_id = created.json()["id"]
    assert (await http.post(f"/v1/callbacks/{callback_id}/contacted")).status_code == 200
    done = await http.post(f"/v1/callbacks/{callback_id}/complete", json={"notes": COMPLETION})
    assert done.status_code == 200, done.text
    return f"c{tenant.company_id}.callback-{callback_id}"


def _clear(text: str | bytes) -> list[str]:
    """The secrets readable in `text` — as they are, or inside a base64 string of CLI JSON output (payload
    data), so that an unencrypted payload cannot hide behind its JSON encoding."""
    blob = text.encode() if isinstance(text, str) else text
    for word in re.findall(rb"[A-Za-z0-9+/]{16,}={0,2}", blob):
        with contextlib.suppress(ValueError):
            blob += b"\n" + base64.b64decode(word + b"=" * (-len(word) % 4))
    return [secret for secret in SECRETS if secret.encode() in blob]


async def _audit(sessions: Sessions) -> list[CodecAudit]:
    async with sessions() as session:
        return list(await session.scalars(select(CodecAudit).order_by(CodecAudit.id)))


async def test_temporal_keeps_no_personal_data_and_the_codec_server_gives_it_to_the_company_only(
    dev_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    other = await make_tenant(sessions, name="Other", staff=1)
    async with running_api(dev_env.client, sessions, task_queue) as api, serve_api(api.app) as url:
        admin = await api.key("admin", tenant)
        staff = await api.key("staff", tenant, staff_id=tenant.staff_ids[0])
        foreign, service = await api.key("admin", other), await api.key("service", tenant)
        root = await api.key("super_admin")
        workflow_id = await _callback(api, tenant, admin)

        # 1. Without the codec: the operator's CLI and a raw client see ids, states and ciphertext.
        shown = await temporal_cli(dev_env, "workflow", "show", "-w", workflow_id, "--output", "json")
        described = await temporal_cli(dev_env, "workflow", "describe", "-w", workflow_id, "--output", "json")
        history, description = await raw_history_and_description(dev_env.client, workflow_id)
        raw = History(events=history.events)
        for name, stored in (("show", shown), ("describe", described), ("history", raw.SerializeToString())):
            assert _clear(stored) == [], f"{name} shows personal data"
        assert _clear(description) == []
        assert "YmluYXJ5L2VuY3J5cHRlZA" in shown  # base64 of binary/encrypted
        payloads = codec_payloads(raw) + codec_payloads(
            DescribeWorkflowExecutionResponse.FromString(description)
        )
        assert payloads
        assert all(is_encrypted(p) for p in payloads)
        assert {p.metadata[META_COMPANY_ID] for p in payloads} == {str(tenant.company_id).encode()}

        # 2. Through the codec server: the company's admin and staff read everything back.
        body = payloads_json(payloads)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def decode(key: str | None, **headers: str) -> httpx.Response:
                if key is not None:
                    headers["Authorization"] = f"Bearer {key}"
                return await http.post(
                    "/codec/decode", json=body, headers={"X-Namespace": "default", **headers}
                )

            for key in (admin, staff, root):
                answer = await decode(key, **{"X-Workflow-Id": workflow_id})
                assert answer.status_code == 200, answer.text
                clear = "".join(str(p) for p in answer.json()["payloads"])
                assert {NAME, E164, EMAIL, NOTES, COMPLETION} <= set(_decoded_texts(answer.json()))
                assert "encryption-key-id" not in clear

            # 3. Another company's admin, a service key, no key: refused, and the attempts are on record.
            refused = await decode(foreign)
            assert refused.status_code == 403, refused.text
            assert NAME not in refused.text
            assert (await decode(service)).status_code == 403
            assert (await decode(None)).status_code == 401
            assert (await decode(foreign, **{"X-Workflow-Id": workflow_id})).status_code == 403

        # The CLI reads through the codec server with the admin's key (the same JSON output, decoded).
        codec = ["--codec-endpoint", f"{url}/codec", "--codec-auth", f"Bearer {admin}"]
        as_json = await temporal_cli(dev_env, "workflow", "show", "-w", workflow_id, "-o", "json", *codec)
        assert {NAME, E164, EMAIL, NOTES, COMPLETION} <= set(_clear(as_json))
        decoded = await temporal_cli(dev_env, "workflow", "show", "-w", workflow_id, *codec)
        assert NAME in decoded
        assert NOTES in decoded

    audit = await _audit(sessions)
    granted = [(a.role, a.key_company_id) for a in audit if a.granted and a.operation == "decode"]
    assert ("admin", tenant.company_id) in granted
    assert ("staff", tenant.company_id) in granted
    assert ("super_admin", None) in granted
    denied = [a for a in audit if not a.granted]
    assert {(a.role, a.key_company_id) for a in denied} == {
        ("admin", other.company_id),
        ("service", tenant.company_id),
    }
    attempt = next(a for a in denied if a.workflow_id == workflow_id)
    assert attempt.payload_companies == [tenant.company_id]
    assert attempt.namespace == "default"
    assert attempt.via == "bearer"
    assert attempt.occurred_at is not None
    assert attempt.reason == "the workflow belongs to another company"
    cli_reads = [
        a for a in audit if a.granted and a.key_company_id == tenant.company_id and a.via == "bearer"
    ]
    assert len(cli_reads) >= 3  # admin, staff, and the CLI's own decode requests


def _decoded_texts(answer: dict[str, Any]) -> list[str]:
    """Every string value inside the decoded JSON payloads."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for payload in answer["payloads"]:
        if payload.get("metadata", {}).get("encoding") == base64.b64encode(b"json/plain").decode():
            walk(json.loads(base64.b64decode(payload["data"])))
    return found


async def test_the_ui_decodes_with_the_console_sign_in_from_its_own_origin_only(
    dev_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    tenant = await make_tenant(sessions, staff=1)
    async with running_api(dev_env.client, sessions, task_queue) as api:
        admin = await api.key("admin", tenant)
        workflow_id = await _callback(api, tenant, admin)
        history, _ = await raw_history_and_description(dev_env.client, workflow_id)
        body = payloads_json(codec_payloads(History(events=history.events)))
        browser = api.http()
        await http_sign_in(browser, admin)
        assert browser.cookies.get("cbc_session", path="/codec")

        # The UI's preflight, then its decode with credentials: allowed for the configured origin only.
        preflight = await browser.options(
            "/codec/decode",
            headers={"Origin": UI, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == UI
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "x-namespace" in preflight.headers["access-control-allow-headers"]
        ui = await browser.post("/codec/decode", json=body, headers={"Origin": UI, "X-Namespace": "default"})
        assert ui.status_code == 200, ui.text
        assert ui.headers["access-control-allow-origin"] == UI
        assert NAME in _decoded_texts(ui.json())

        evil = "http://evil.example"
        assert (await browser.options("/codec/decode", headers={"Origin": evil})).status_code == 403
        stolen = await browser.post("/codec/decode", json=body, headers={"Origin": evil})
        assert stolen.status_code == 401
        assert "access-control-allow-origin" not in stolen.headers
        assert (await browser.post("/codec/decode", json=body)).status_code == 401  # no origin, no session

        # Encoding for the UI (an operator's signal input) is under the key's company.
        typed = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IkhlbGxvIg=="}]}
        encoded = await browser.post("/codec/encode", json=typed, headers={"Origin": UI})
        assert encoded.status_code == 200, encoded.text
        [sealed] = encoded.json()["payloads"]
        company = sealed["metadata"]["encryption-company-id"]
        assert company == base64.b64encode(str(tenant.company_id).encode()).decode()
        # Protobuf JSON reads a null as empty; the document says base64 strings, and so does the API.
        loose_payloads: list[dict[str, object]] = [
            {"metadata": {}, "data": None},
            {"metadata": {"encoding": None}},
            {"metadata": []},
        ]
        for loose in loose_payloads:
            refused = await browser.post("/codec/encode", json={"payloads": [loose]}, headers={"Origin": UI})
            assert refused.status_code == 400, (loose, refused.text)
            assert refused.json()["type"].endswith("/bad-payloads")

    audit = await _audit(sessions)
    assert [(a.operation, a.via, a.origin) for a in audit] == [
        ("decode", "session", UI),
        ("encode", "session", UI),
    ]
