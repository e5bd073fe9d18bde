"""The payload codec on a Temporal server: the history and the description hold only ciphertext, a
client with the codec reads everything back, and histories written before the codec still replay."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.message import Message
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from codec.converter import encrypted_data_converter
from codec.keys import KeyRing, MasterKey
from codec.payload import META_COMPANY_ID, EncryptionCodec
from devstack.temporal import binary
from models.workflow_ids import tenant_workflow_id
from worker import SANDBOXED_RUNNER, WORKFLOWS

NAME = "Erika Mustermann"
PHONE = "+4915112345678"
COMPANY = 42
RING = KeyRing([MasterKey("k1", hashlib.sha256(b"k1").digest())])


class Customer(BaseModel):
    name: str
    phone: str


class Greeting(BaseModel):
    text: str
    customer: Customer


@activity.defn
async def send_sms(customer: Customer) -> None:
    # A failure message with personal data, as real delivery errors have.
    raise ApplicationError(f"SMS to {customer.phone} bounced", non_retryable=True)


@activity.defn
async def greet(customer: Customer) -> Greeting:
    return Greeting(text=f"Hello {customer.name}", customer=customer)


@workflow.defn(sandboxed=False)
class GreetCustomer:
    @workflow.run
    async def run(self, customer: Customer) -> Greeting:
        with suppress(ActivityError):  # the failure is in the history now, which is the point
            await workflow.execute_activity(send_sms, customer, start_to_close_timeout=timedelta(seconds=10))
        return await workflow.execute_activity(greet, customer, start_to_close_timeout=timedelta(seconds=10))


def all_payloads(message: Message) -> Iterator[Payload]:
    """Every Payload inside a protobuf message (history events, descriptions), maps and lists included."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = list(value) if field.is_repeated else [value]
        for item in items:
            if isinstance(item, Message):
                yield from all_payloads(item)


async def test_temporal_stores_only_ciphertext(task_queue: str) -> None:
    converter = encrypted_data_converter(RING)
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=converter, test_server_existing_path=binary("temporal-test-server")
    )
    try:
        workflow_id = tenant_workflow_id(COMPANY, f"callback-{uuid.uuid4()}")
        async with Worker(
            env.client, task_queue=task_queue, workflows=[GreetCustomer], activities=[greet, send_sms]
        ):
            handle = await env.client.start_workflow(
                GreetCustomer.run,
                Customer(name=NAME, phone=PHONE),
                id=workflow_id,
                task_queue=task_queue,
                memo={"customer": NAME},
                static_summary=f"Callback for {NAME}",
            )
            result = await handle.result()
        assert result == Greeting(text=f"Hello {NAME}", customer=Customer(name=NAME, phone=PHONE))
        described = await handle.describe()
        assert await described.memo() == {"customer": NAME}
        assert await described.static_summary() == f"Callback for {NAME}"

        plain = Client(env.client.service_client, namespace=env.client.namespace)
        plain_handle = plain.get_workflow_handle(workflow_id)
        history = History(events=(await plain_handle.fetch_history()).events)
        description = (await plain_handle.describe()).raw_description
        for stored in (history, description):
            wire = stored.SerializeToString()
            assert NAME.encode() not in wire
            assert PHONE.encode() not in wire
            assert PHONE[3:].encode() not in wire
        payloads = list(all_payloads(history)) + list(all_payloads(description))
        assert payloads
        assert all(p.metadata.get(META_COMPANY_ID) == str(COMPANY).encode() for p in payloads)
        # The data is all there, for whoever holds the ring: input, result, memo, the failure message.
        readable = b"".join(p.data for p in await EncryptionCodec(RING).decode(payloads))
        for clear in (NAME, PHONE, f"Hello {NAME}", f"SMS to {PHONE} bounced"):
            assert clear.encode() in readable
        with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):  # no codec, no data
            await plain_handle.result()

        replayer = Replayer(workflows=[GreetCustomer], data_converter=converter)
        await replayer.replay_workflow(await handle.fetch_history())
    finally:
        await env.shutdown()


async def test_histories_from_before_the_codec_still_replay() -> None:
    path = Path(__file__).parent / "histories" / "completed.v2.json"
    history = WorkflowHistory.from_json("callback-completed", path.read_text())
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=encrypted_data_converter(RING),
        workflow_runner=SANDBOXED_RUNNER,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
