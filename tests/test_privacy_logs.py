"""Logs and metrics carry no personal data (issue 16): every JSON line of a whole scenario — created,
assigned, escalated, contacted, completed, notified by mail and webhook, one webhook delivery failing with
an answer that echoes the customer — holds no full phone number, no customer name, no email address and
no notes, nor does any metric; and the redaction behind it masks what third parties put into exception
texts."""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.requests import Request
from starlette.responses import Response
from temporalio.testing import WorkflowEnvironment

from channels.webhook import SIGNATURE_HEADER, verify
from telemetry import metrics
from telemetry.logs import JsonFormatter, redact
from tests.api_fixtures import Sessions, running_api
from tests.notify_fixtures import SECRET, Received, WebhookReceiver, notify_tenant, outside_world
from tests.privacy_fixtures import COMPLETION, E164, EMAIL, NAME, NATIONAL, NOTES, PHONE, SECRETS
from tests.test_observability import captured_json_lines


class EchoingReceiver(WebhookReceiver):
    """A receiver whose first answer is a 500 that echoes the body it got (customer name, phone, email),
    as careless gateways do."""

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(
            Received(
                dict(request.headers), body, verify(SECRET, body, request.headers.get(SIGNATURE_HEADER, ""))
            )
        )
        if len(self.received) == 1:
            return Response(b"could not process " + body[body.find(b'"customer') :], status_code=500)
        return Response(b"{}", status_code=200, media_type="application/json")


def test_redaction_masks_numbers_and_addresses_but_keeps_ids_and_times() -> None:
    assert redact(f"SMS to {PHONE} bounced") == "SMS to +49…89 bounced"
    assert redact(f"number={E164}, mailbox <{EMAIL}> unknown") == "number=+49…89, mailbox <<email>> unknown"
    assert redact("0049 151 23456789 and +49 (151) 234-56789") == "004…89 and +49…89"
    kept = (
        "callback c42.callback-00000000-0000-0000-0000-000000001234 at version 12, "
        "2026-01-05T09:00:00+00:00, took 1234567 ms, webhook answered 500"
    )
    assert redact(kept) == kept
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "refused %s", (EMAIL,), None)
    assert EMAIL not in JsonFormatter().format(record)


async def test_the_json_logs_of_a_whole_scenario_hold_no_personal_data(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = time_skipping_env
    async with outside_world(EchoingReceiver()) as world:
        people = await notify_tenant(sessions, webhook_url=world.hook_url)
        tenant = people.tenant
        async with running_api(
            env.client,
            sessions,
            task_queue,
            smtp_url=world.smtp_url,
            notify_sms_gateway_url=world.sms_url,
            notify_retry_delay_minutes=0,
        ) as api:
            http = api.http(await api.key("admin", tenant))
            with captured_json_lines() as lines:
                created = await http.post(
                    "/v1/callbacks",
                    json={
                        "branch_id": tenant.branch_ids[0],
                        "customer_name": NAME,
                        "phone_number": PHONE,
                        "email": EMAIL,
                        "notes": NOTES,
                        "priority": "high",
                    },
                )
                assert created.status_code == 201, created.text
                callback = f"/v1/callbacks/{created.json()['id']}"
                steps = [
                    ("assign", {"staff_id": str(people.alice)}),
                    ("escalate", {"reason": "customer upset", "details": "asked twice"}),
                    ("contacted", None),
                    ("complete", {"notes": COMPLETION}),
                ]
                for step, body in steps:
                    answer = await http.post(f"{callback}/{step}", json=body)
                    assert answer.status_code == 200, (step, answer.text)
                for _ in range(200):  # the notifications, the failed webhook delivery's retry included
                    if len(world.hook.received) >= 5 and world.mail.messages:
                        break
                    await env.sleep(1)
                    await asyncio.sleep(0.05)
    assert len(world.hook.received) >= 5
    assert NAME.encode() in world.hook.received[0].body  # the receiver did get (and echo) the customer
    entries = [json.loads(line) for line in lines]
    assert any("webhook answered 500" in json.dumps(entry) for entry in entries), "the failure was logged"
    assert any(entry.get("activity_type") == "persist_transition" for entry in entries)
    for entry in entries:
        text = json.dumps(entry, ensure_ascii=False)
        leaked = [secret for secret in (*SECRETS, NATIONAL[-7:]) if secret in text]
        assert not leaked, f"{leaked} in {text}"
    # The process's metrics (every label the scenario produced) hold none either.
    exported = metrics.render().decode()
    assert "callbacks_created_total" in exported
    assert [secret for secret in (*SECRETS, NATIONAL[-7:]) if secret in exported] == []
