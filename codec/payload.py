"""The payload codec: every payload leaves the process compressed and encrypted with its company's key.

The whole original Payload (its metadata too: the encoding and pydantic's type hints can say something)
is serialized, zlib-compressed and sealed with AES-256-GCM under a random 12-byte nonce. Compression comes
first because ciphertext does not compress. The result is self-describing — `encoding: binary/encrypted`,
the key id and the company id in clear metadata — so any process holding the ring can decrypt a payload
without knowing where it came from: the codec server, the Replayer, a parent reading a child's result.
The key id and company id are also the GCM associated data, so relabelling a payload as another
company's (or another key's) fails authentication instead of decrypting under the wrong tenant.

Which company: the serialization context Temporal hands to `with_context` names the workflow the payload
belongs to, and `models.workflow_ids` reads the company from that id. Payloads without a tenant workflow
(old `callback-<uuid>` ids, schedules' system jobs, calls without a context) use the shared key.

Decoding passes payloads that are not encrypted through unchanged: histories written before the codec
must keep replaying.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from typing import Self

from cryptography.exceptions import InvalidTag
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from codec.keys import CodecError, KeyRing
from models.workflow_ids import company_of_workflow_id

ENCODING = b"binary/encrypted"
META_ENCODING = "encoding"
META_KEY_ID = "encryption-key-id"
META_COMPANY_ID = "encryption-company-id"
# The layout of `data` (nonce ‖ AES-256-GCM(zlib(Payload))): lets a later scheme coexist with this one.
META_FORMAT = "encryption-format"
FORMAT = b"zlib+aes256gcm/1"
NONCE_BYTES = 12


class PayloadDecryptError(CodecError):
    """An encrypted payload that cannot be turned back into the original (corrupt, altered, wrong key)."""


def associated_data(key_id: str, company_id: int | None) -> bytes:
    """What the ciphertext is bound to besides its key: the ids the metadata claims."""
    company = b"" if company_id is None else str(company_id).encode()
    return b"callbacks-codec/1\x00" + FORMAT + b"\x00" + key_id.encode() + b"\x00" + company


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get(META_ENCODING) == ENCODING


def company_of_context(context: SerializationContext) -> int | None:
    """The company of the workflow a payload belongs to; None when the context names no tenant workflow
    (a standalone activity, a Nexus operation, a workflow id outside the tenant convention)."""
    if (
        isinstance(context, WorkflowSerializationContext | ActivitySerializationContext)
        and context.workflow_id
    ):
        return company_of_workflow_id(context.workflow_id)
    return None


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Encrypts for the company of its context; decrypts whatever the ring has a key for.

    The instance given to the data converter has no company (the shared key); Temporal replaces it by
    `with_context(...)` copies around each workflow's and activity's payloads. `company_id` is for
    callers without a context, such as a codec server encoding on behalf of a known company.
    """

    def __init__(self, keyring: KeyRing, company_id: int | None = None) -> None:
        super().__init__()
        self._keyring = keyring
        self._company_id = company_id

    @property
    def keyring(self) -> KeyRing:
        return self._keyring

    @property
    def company_id(self) -> int | None:
        return self._company_id

    def with_context(self, context: SerializationContext) -> Self:
        company_id = company_of_context(context)
        return self if company_id == self._company_id else type(self)(self._keyring, company_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) if is_encrypted(payload) else payload for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key = self._keyring.encryption_key(self._company_id)
        nonce = os.urandom(NONCE_BYTES)
        plaintext = zlib.compress(payload.SerializeToString(deterministic=True))
        sealed = key.aead.encrypt(nonce, plaintext, associated_data(key.key_id, key.company_id))
        metadata = {META_ENCODING: ENCODING, META_FORMAT: FORMAT, META_KEY_ID: key.key_id.encode()}
        if key.company_id is not None:
            metadata[META_COMPANY_ID] = str(key.company_id).encode()
        return Payload(metadata=metadata, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; KeyUnavailable / CompanyShredded when its key is gone,
        PayloadDecryptError when the payload itself is bad."""
        fmt = payload.metadata.get(META_FORMAT, b"")
        if fmt != FORMAT:
            raise PayloadDecryptError(
                f"encrypted payload of unknown format {fmt!r} (this codec writes {FORMAT!r})"
            )
        key_id = payload.metadata.get(META_KEY_ID, b"").decode("utf-8", "replace")
        if not key_id:
            raise PayloadDecryptError("encrypted payload without a key id in its metadata")
        company_id = _company_metadata(payload)
        key = self._keyring.decryption_key(key_id, company_id)
        data = payload.data
        if len(data) <= NONCE_BYTES:
            raise PayloadDecryptError(f"encrypted payload of {len(data)} bytes is too short to hold a nonce")
        try:
            plaintext = key.aead.decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], associated_data(key_id, company_id)
            )
        except InvalidTag:
            owner = "no company" if company_id is None else f"company {company_id}"
            raise PayloadDecryptError(
                f"encrypted payload (key {key_id!r}, {owner}) failed authentication: it was altered, or "
                "the key under that id is not the one it was written with"
            ) from None
        try:
            return Payload.FromString(zlib.decompress(plaintext))
        except (zlib.error, DecodeError) as error:
            raise PayloadDecryptError(f"decrypted payload is not a compressed Payload: {error}") from None


def _company_metadata(payload: Payload) -> int | None:
    raw = payload.metadata.get(META_COMPANY_ID)
    if raw is None:
        return None
    text = raw.decode("ascii", "replace")
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise PayloadDecryptError(f"encrypted payload with an invalid company id {text!r} in its metadata")
    return int(text)
