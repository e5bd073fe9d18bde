"""The payload codec (issue 16): personal data leaves the process only encrypted, with the company's key;
rotation keeps old payloads readable; shredding a company makes exactly its payloads unreadable.
On a Temporal server: tests/test_codec_temporal.py."""

from __future__ import annotations

import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext

from codec import keys as codec_keys
from codec.keys import (
    CodecSettings,
    CompanyKey,
    CompanyShredded,
    KeyConfigError,
    KeyRing,
    KeyUnavailable,
    MasterKey,
    load_keyring,
    parse_master_keys,
)
from codec.payload import (
    ENCODING,
    META_COMPANY_ID,
    META_KEY_ID,
    NONCE_BYTES,
    EncryptionCodec,
    PayloadDecryptError,
    associated_data,
    is_encrypted,
)
from models.workflow_ids import base_of_workflow_id, company_of_workflow_id, tenant_workflow_id

NAME = "Erika Mustermann"
PHONE = "+4915112345678"
COMPANY_A, COMPANY_B = 41, 42


def secret(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


K1, K2 = MasterKey("k1", secret("k1")), MasterKey("k2", secret("k2"))


class Customer(BaseModel):
    name: str
    phone: str


def payload_of(value: Any) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


CUSTOMER = payload_of(Customer(name=NAME, phone=PHONE))


@pytest.fixture(autouse=True)
def no_codec_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEYS", "KEYS_FILE", "COMPANY_KEYS", "COMPANY_KEYS_FILE", "SHREDDED", "SHREDDED_FILE"):
        monkeypatch.delenv(f"CALLBACKS_CODEC_{name}", raising=False)


# --- payloads -------------------------------------------------------------------------------------


async def test_round_trip_hides_the_personal_data() -> None:
    ring = KeyRing([K1])
    codec = EncryptionCodec(ring, COMPANY_A)
    [sealed] = await codec.encode([CUSTOMER])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[META_KEY_ID] == b"k1"
    assert sealed.metadata[META_COMPANY_ID] == str(COMPANY_A).encode()
    wire = sealed.SerializeToString()
    assert NAME.encode() not in wire
    assert PHONE.encode() not in wire
    assert b"json/plain" not in wire  # the original metadata is inside the ciphertext too
    # Any codec with the ring decrypts, whatever its own context: the payload names its key and company.
    assert await EncryptionCodec(ring).decode([sealed]) == [CUSTOMER]
    assert pydantic_data_converter.payload_converter.from_payloads(
        await codec.decode([sealed]), [Customer]
    ) == [Customer(name=NAME, phone=PHONE)]


async def test_two_encryptions_of_one_payload_differ() -> None:
    codec = EncryptionCodec(KeyRing([K1]), None)
    first, second = await codec.encode([CUSTOMER, CUSTOMER])
    assert first.data != second.data  # a fresh nonce each time
    assert META_COMPANY_ID not in first.metadata  # no company: the shared key
    assert await codec.decode([first, second]) == [CUSTOMER, CUSTOMER]


def test_payloads_are_compressed_before_encryption() -> None:
    notes = Payload(
        metadata={"encoding": b"json/plain"},
        data=b'{"notes": "' + b"please call back after lunch, " * 2000 + b'"}',
    )
    sealed = EncryptionCodec(KeyRing([K1]), COMPANY_A).encrypt(notes)
    assert len(sealed.data) < len(notes.SerializeToString()) / 10


async def test_decode_leaves_plain_payloads_unchanged() -> None:
    plain = [payload_of("old history"), Payload(metadata={"encoding": b"binary/null"})]
    assert not any(is_encrypted(p) for p in plain)
    assert await EncryptionCodec(KeyRing([K1])).decode(plain) == plain


@pytest.mark.parametrize("change", ["company", "drop_company", "key_id", "ciphertext"])
def test_altered_payloads_are_refused(change: str) -> None:
    ring = KeyRing([K1, K2])
    sealed = EncryptionCodec(ring, COMPANY_A).encrypt(CUSTOMER)
    altered = Payload()
    altered.CopyFrom(sealed)
    if change == "company":
        altered.metadata[META_COMPANY_ID] = str(COMPANY_B).encode()
    elif change == "drop_company":
        del altered.metadata[META_COMPANY_ID]
    elif change == "key_id":
        altered.metadata[META_KEY_ID] = b"k2"
    else:
        altered.data = altered.data[:-1] + bytes([altered.data[-1] ^ 1])
    with pytest.raises(PayloadDecryptError, match="failed authentication"):
        EncryptionCodec(ring).decrypt(altered)


def test_the_ciphertext_is_bound_to_its_key_and_company_ids() -> None:
    ring = KeyRing([K1])
    sealed = EncryptionCodec(ring, COMPANY_A).encrypt(CUSTOMER)
    key = ring.decryption_key("k1", COMPANY_A)
    nonce, body = sealed.data[:NONCE_BYTES], sealed.data[NONCE_BYTES:]
    assert key.aead.decrypt(nonce, body, associated_data("k1", COMPANY_A))
    for other in (
        associated_data("k1", COMPANY_B),
        associated_data("k1", None),
        associated_data("k2", COMPANY_A),
    ):
        with pytest.raises(InvalidTag):
            key.aead.decrypt(nonce, body, other)


def test_the_company_comes_from_the_serialization_context() -> None:
    codec = EncryptionCodec(KeyRing([K1]))
    tenant = tenant_workflow_id(COMPANY_B, "callback-123")
    assert codec.with_context(WorkflowSerializationContext("default", tenant)).company_id == COMPANY_B
    assert codec.with_context(WorkflowSerializationContext("default", "callback-123")).company_id is None
    in_activity = ActivitySerializationContext("default", "1", "greet", "q", tenant, "Greet", False)
    assert codec.with_context(in_activity).company_id == COMPANY_B
    standalone = ActivitySerializationContext("default", "1", "greet", "q", None, None, False)
    assert codec.with_context(standalone).company_id is None
    assert codec.with_context(WorkflowSerializationContext("default", "callback-1")) is codec


# --- rotation, per-company keys, shredding ----------------------------------------------------------


async def test_rotation_reads_old_keys_and_writes_with_the_current_one() -> None:
    before = EncryptionCodec(KeyRing([K1]), COMPANY_A).encrypt(CUSTOMER)
    rotated = EncryptionCodec(KeyRing([K2, K1]), COMPANY_A)
    assert rotated.decrypt(before) == CUSTOMER
    after = rotated.encrypt(CUSTOMER)
    assert after.metadata[META_KEY_ID] == b"k2"

    retired = EncryptionCodec(KeyRing([K2]), COMPANY_A)
    assert retired.decrypt(after) == CUSTOMER
    with pytest.raises(KeyUnavailable, match="key 'k1', which is not in the key ring"):
        await retired.decode([before])


def test_each_company_has_its_own_derived_key() -> None:
    ring = KeyRing([K1])
    keys = {company: ring.encryption_key(company).secret for company in (None, COMPANY_A, COMPANY_B)}
    assert len(set(keys.values())) == 3
    assert K1.secret not in keys.values()
    # Another process with the same master key derives the same keys.
    assert KeyRing([K1]).encryption_key(COMPANY_A).secret == keys[COMPANY_A]


async def test_shredding_a_company_leaves_the_others_readable() -> None:
    ring = KeyRing([K1])
    of_a = EncryptionCodec(ring, COMPANY_A).encrypt(CUSTOMER)
    of_b = EncryptionCodec(ring, COMPANY_B).encrypt(CUSTOMER)
    shared = EncryptionCodec(ring, None).encrypt(CUSTOMER)

    shredded = EncryptionCodec(KeyRing([K1], shredded=[COMPANY_A]))
    with pytest.raises(CompanyShredded, match=f"company {COMPANY_A} was shredded"):
        await shredded.decode([of_a])
    assert await shredded.decode([of_b, shared]) == [CUSTOMER, CUSTOMER]
    with pytest.raises(CompanyShredded):  # nothing new is written for it either
        EncryptionCodec(shredded.keyring, COMPANY_A).encrypt(CUSTOMER)


async def test_deleting_a_company_key_makes_its_payloads_unrecoverable() -> None:
    own = CompanyKey(COMPANY_A, "a-2025", secret("company A"))
    early = EncryptionCodec(KeyRing([K1]), COMPANY_A).encrypt(CUSTOMER)  # before A got its own key
    ring = KeyRing([K1], company_keys=[own])
    of_a = EncryptionCodec(ring, COMPANY_A).encrypt(CUSTOMER)
    of_b = EncryptionCodec(ring, COMPANY_B).encrypt(CUSTOMER)
    assert of_a.metadata[META_KEY_ID] == b"a-2025"
    assert ring.encryption_key(COMPANY_A).secret == own.secret  # used as is, not derived
    assert await EncryptionCodec(ring).decode([of_a, of_b, early]) == [CUSTOMER] * 3

    deleted = EncryptionCodec(KeyRing([K1]))
    with pytest.raises(KeyUnavailable, match=f"company {COMPANY_A} was encrypted with key 'a-2025'"):
        await deleted.decode([of_a])
    assert await deleted.decode([of_b]) == [CUSTOMER]
    # What A wrote under the master key needs the shredded list as well (see codec.keys).
    with pytest.raises(CompanyShredded):
        EncryptionCodec(KeyRing([K1], shredded=[COMPANY_A])).decrypt(early)


def test_a_ring_refuses_ambiguous_keys() -> None:
    with pytest.raises(KeyConfigError, match="at least one master key"):
        KeyRing([])
    with pytest.raises(KeyConfigError, match="listed twice"):
        KeyRing([K1, MasterKey("k1", secret("other"))])
    with pytest.raises(KeyConfigError, match="also a master key id"):
        KeyRing([K1], company_keys=[CompanyKey(COMPANY_A, "k1", secret("a"))])
    with pytest.raises(KeyConfigError, match="exactly 32"):
        MasterKey("short", b"x" * 16)


# --- loading keys -----------------------------------------------------------------------------------


def settings(**values: Any) -> CodecSettings:
    return CodecSettings(_env_file=None, **values)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def entry(key: MasterKey) -> str:
    return f"{key.key_id}:{b64(key.secret)}"


def test_keys_load_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACKS_CODEC_KEYS", f"{entry(K2)}, {entry(K1)}")
    company_secret = secret("company A")
    monkeypatch.setenv("CALLBACKS_CODEC_COMPANY_KEYS", f"{COMPANY_A}:a-1:{b64(company_secret)}")
    monkeypatch.setenv("CALLBACKS_CODEC_SHREDDED", "9, 11")
    ring = load_keyring(CodecSettings(_env_file=None))
    assert ring.current_key_id == "k2"
    assert ring.shredded == {9, 11}
    assert ring.encryption_key(COMPANY_A).secret == company_secret
    assert ring.encryption_key(COMPANY_B).secret == KeyRing([K2]).encryption_key(COMPANY_B).secret
    assert ring.decryption_key("k1", None).secret == KeyRing([K1]).encryption_key(None).secret
    assert ring.describe() == (
        "master keys: k2, k1 (current k2); company keys: 41: a-1; shredded companies: 9, 11"
    )


def test_keys_load_from_a_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "codec-keys"
    path.write_text(f"# rotated 2025-06-01\n{entry(K2)}  # current\n\n{entry(K1)}\n")
    ring = load_keyring(settings(keys_file=path))
    assert ring.current_key_id == "k2"
    assert ring.decryption_key("k1", COMPANY_A).key_id == "k1"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "no codec keys: set CALLBACKS_CODEC_KEYS or CALLBACKS_CODEC_KEYS_FILE"),
        ({"keys": " , "}, "CALLBACKS_CODEC_KEYS lists no keys"),
        ({"keys": "k1:not*base64"}, "entry 1: key 'k1' is not valid base64"),
        ({"keys": "k1:" + "QUJD" * 4}, "entry 1: key 'k1' is 12 bytes, AES-256 needs exactly 32"),
        ({"keys": "just-a-key"}, "expected `key_id:base64`, got 1 fields"),
        ({"keys": "bad id:" + "A" * 44}, "key id 'bad id' is not valid"),
        (
            {"keys": "k1:x", "keys_file": Path("/nonexistent")},
            "set CALLBACKS_CODEC_KEYS or .*_FILE, not both",
        ),
        ({"keys_file": Path("/nonexistent/codec")}, "cannot read /nonexistent/codec"),
        ({"keys": entry(K1), "company_keys": "x:a:" + "A" * 44}, "company id 'x' is not a number"),
        ({"keys": entry(K1), "company_keys": "7:" + "A" * 44}, "expected `company_id:key_id:base64`"),
        ({"keys": entry(K1), "shredded": "7,seven"}, "CALLBACKS_CODEC_SHREDDED, entry 2: 'seven' is not"),
    ],
)
def test_bad_key_configuration_is_explained(values: dict[str, Any], message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        load_keyring(settings(**values))


def test_errors_point_at_the_line_and_never_echo_the_secret(tmp_path: Path) -> None:
    short = "QUJD" * 4
    path = tmp_path / "keys"
    path.write_text(f"{entry(K1)}\n# old\nk0:{short}\n")
    with pytest.raises(KeyConfigError, match=r"_FILE .*keys, line 3: key 'k0' is 12 bytes") as raised:
        load_keyring(settings(keys_file=path))
    assert short not in str(raised.value)
    assert "secret" not in repr(K1)
    assert short not in repr(settings(keys=f"k0:{short}"))


def test_new_prints_a_loadable_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the working directory
    assert codec_keys.main(["new"]) == 0
    printed = capsys.readouterr().out.strip()
    [key] = parse_master_keys(printed, "printed")
    assert len(key.secret) == 32
    assert codec_keys.main(["new", "--company", "7", "--id", "c7-a"]) == 0
    assert capsys.readouterr().out.startswith("7:c7-a:")
    assert codec_keys.main(["check"]) == 2
    assert "no codec keys" in capsys.readouterr().err


# --- workflow ids ---------------------------------------------------------------------------------


def test_tenant_workflow_ids() -> None:
    base = f"callback-{uuid.uuid4()}"
    tenant = tenant_workflow_id(42, base)
    assert tenant == f"c42.{base}"
    assert company_of_workflow_id(tenant) == 42
    assert base_of_workflow_id(tenant) == base
    for outside in (base, "callbacks-reconcile", "appointment-change-4-r1", "c042.x", "c0.x", "c42", "c.x"):
        assert company_of_workflow_id(outside) is None
        assert base_of_workflow_id(outside) == outside
    for company, bad_base in ((0, base), (-1, base), (True, base), (42, ""), (42, tenant)):
        with pytest.raises(ValueError, match=r"company|empty|already"):
            tenant_workflow_id(company, bad_base)
