"""What the personal-data tests share (issue 16): a customer whose every detail is recognisable, and the
payloads a Temporal workflow stores, read without any codec."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory

NAME = "Henriette Vogelsang"
PHONE = "+49 151 23456789"
E164 = "+4915123456789"
NATIONAL = "15123456789"
EMAIL = "henriette.vogelsang@example.org"
NOTES = "Rueckruf wegen Befund Knie links"
COMPLETION = "Termin fuer Dienstag vereinbart"
# What must never be readable outside PostgreSQL (and the codec server, for the right key).
SECRETS = (NAME, E164, NATIONAL, EMAIL, NOTES, COMPLETION, "Vogelsang", "henriette")

# Payloads Temporal itself writes in clear and never hands to a codec: search attributes (ids, states,
# deadlines only: models/search_attributes.py) and the SDK core's bookkeeping of local activities.
CLEAR_BY_DESIGN = ("search_attributes", "indexed_fields")
CORE_MARKER_DATA = ("details[data]/payloads", "details[patch-data]/payloads")


def stored_payloads(message: Message, *, inside: str = "") -> Iterator[tuple[str, Payload]]:
    """(where, payload) of every Payload in a protobuf message (history events, descriptions)."""
    if isinstance(message, Payload):
        yield inside, message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.items())
        else:
            items = [(None, item) for item in (list(value) if field.is_repeated else [value])]
        for key, item in items:
            if isinstance(item, Message):
                where = f"{inside}/{field.name}" + (f"[{key}]" if key is not None else "")
                yield from stored_payloads(item, inside=where)


def codec_payloads(message: Message) -> list[Payload]:
    """The payloads that go through the data converter's codec: everything but `CLEAR_BY_DESIGN` and the
    SDK core's own marker data (a local activity's type and times, a patch id)."""
    return [
        payload
        for where, payload in stored_payloads(message)
        if not any(part in where for part in CLEAR_BY_DESIGN) and not where.endswith(CORE_MARKER_DATA)
    ]


def plain_client(client: Client) -> Client:
    """The same server and namespace without any codec: what anyone reaching the frontend sees."""
    return Client(client.service_client, namespace=client.namespace)


async def raw_history_and_description(client: Client, workflow_id: str) -> tuple[WorkflowHistory, bytes]:
    handle = plain_client(client).get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    description = (await handle.describe()).raw_description.SerializeToString()
    return history, description
