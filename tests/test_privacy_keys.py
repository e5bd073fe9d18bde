"""Key rotation and crypto-shredding end to end (issue 16), with keys configured as an operator does
(settings → wiring.data_converter): callbacks written under key 1 go on under key 2 (a fresh worker
replays their old payloads), and removing company A's own key leaves company B's histories readable and
A's unreadable — for workers, for the Replayer and through the codec server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.codec_server import payloads_json
from codec.keys import CompanyShredded, KeyUnavailable
from codec.payload import META_KEY_ID, EncryptionCodec
from config import Settings
from models.callbacks import Complete, MarkContacted
from tests.api_fixtures import Sessions, running_api
from tests.callback_harness import new_callback, running_worker
from tests.codec_fixtures import key_entry
from tests.factories import make_tenant
from tests.privacy_fixtures import codec_payloads, raw_history_and_description
from wiring import data_converter

K1, K2 = key_entry("rotation-k1"), key_entry("rotation-k2")


def company_key(company_id: int) -> str:
    label, secret = key_entry(f"company-{company_id}-a").split(":")
    return f"{company_id}:{label}:{secret}"


def client_with(env: WorkflowEnvironment, **codec: Any) -> Client:
    """A client on the same server whose converter comes from these codec settings, as a process's would."""
    settings = Settings(**{name: SecretStr(v) if name.endswith("keys") else v for name, v in codec.items()})
    return Client(
        env.client.service_client, namespace=env.client.namespace, data_converter=data_converter(settings)
    )


def codec_of(client: Client) -> EncryptionCodec:
    codec = client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    return codec


async def stored(env: WorkflowEnvironment, workflow_id: str) -> list[Payload]:
    history, _ = await raw_history_and_description(env.client, workflow_id)
    return codec_payloads(History(events=history.events))


async def test_rotation_keeps_old_payloads_readable_and_removing_a_company_key_shreds_only_that_company(
    dev_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> None:
    env = dev_env  # a real server: the second worker picks up workflows the first one had cached
    a, b = await make_tenant(sessions, staff=1), await make_tenant(sessions, name="B", staff=1)
    own_key = company_key(a.company_id)  # company A has a key of its own; B's is derived from the master

    # Key 1: both callbacks are created and contacted.
    before = client_with(env, codec_keys=K1, codec_company_keys=own_key)
    async with running_worker(before, sessions, task_queue) as callbacks:
        states = [(await callbacks.create(new_callback(tenant))).state for tenant in (a, b)]
        for state in states:
            await callbacks.act(state.workflow_id, MarkContacted())
    on_a, on_b = (s.workflow_id for s in states)
    assert {p.metadata[META_KEY_ID] for p in await stored(env, on_b)} == {b"rotation-k1"}

    # Rotation: key 2 is current, key 1 stays listed. A new worker replays the key-1 payloads and writes on.
    after = client_with(env, codec_keys=f"{K2},{K1}", codec_company_keys=own_key)
    async with running_worker(after, sessions, task_queue) as callbacks:
        for workflow_id in (on_a, on_b):
            done = await callbacks.act(workflow_id, Complete(notes="called back after the rotation"))
            assert done.status.value == "completed"
            await callbacks.handle(workflow_id).result()
    key_ids = {p.metadata[META_KEY_ID] for p in await stored(env, on_b)}
    assert key_ids == {b"rotation-k1", b"rotation-k2"}
    own_key_id = f"company-{a.company_id}-a".encode()
    assert {p.metadata[META_KEY_ID] for p in await stored(env, on_a)} == {own_key_id}
    readable = b"".join(p.data for p in await codec_of(after).decode(await stored(env, on_b)))
    assert b"Erika Mustermann" in readable
    assert b"called back after the rotation" in readable

    # Company A's own key is deleted everywhere: A's history is unreadable, B's is not.
    shredded = client_with(env, codec_keys=f"{K2},{K1}")
    codec = codec_of(shredded)
    assert b"Erika Mustermann" in b"".join(p.data for p in await codec.decode(await stored(env, on_b)))
    with pytest.raises(KeyUnavailable):
        await codec.decode(await stored(env, on_a))
    with pytest.raises(KeyUnavailable):
        await shredded.get_workflow_handle(on_a).result()
    assert (await shredded.get_workflow_handle(on_b).result()) is not None

    # Through the codec server of such a process: B decodes, A's payloads come back still encrypted.
    async with running_api(shredded, sessions, f"{task_queue}-api") as api:
        root = api.http(await api.key("super_admin"))
        for workflow_id, readable_now in ((on_b, True), (on_a, False)):
            payloads = await stored(env, workflow_id)
            answer = await root.post("/codec/decode", json=payloads_json(payloads))
            assert answer.status_code == 200, answer.text
            decoded = [p["metadata"].get("encoding") for p in answer.json()["payloads"]]
            encrypted = "YmluYXJ5L2VuY3J5cHRlZA=="  # base64 of binary/encrypted
            assert (encrypted not in decoded) is readable_now

    # The shredded list does the same for a company whose key is derived from the master (B).
    listed = codec_of(client_with(env, codec_keys=f"{K2},{K1}", codec_shredded=str(b.company_id)))
    with pytest.raises(CompanyShredded):
        await listed.decode(await stored(env, on_b))
