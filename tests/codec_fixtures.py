"""The test suite's payload codec: every test environment, worker, client and Replayer encrypts with this
ring, so the whole suite runs the way production does (docs/design.md §8).

The key is fixed (derived from a label) so that recorded histories with encrypted payloads
(tests/histories/*.encrypted.*) stay readable run after run. `CALLBACKS_CODEC_KEYS` is set for the test
process at import, so `Settings()` anywhere in the suite, and the subprocesses the suite starts (a worker,
the CLI), load the same ring through the composition root.
"""

from __future__ import annotations

import base64
import hashlib
import os

from temporalio.converter import DataConverter

from codec.converter import encrypted_data_converter
from codec.keys import KeyRing, parse_master_keys


def key_entry(label: str) -> str:
    """A master key entry `label:<base64>` whose secret is derived from the label (tests only)."""
    return f"{label}:{base64.b64encode(hashlib.sha256(f'callbacks-test/{label}'.encode()).digest()).decode()}"


TEST_KEYS = key_entry("test-k1")
TEST_RING = KeyRing(parse_master_keys(TEST_KEYS, "tests"))
CONVERTER: DataConverter = encrypted_data_converter(TEST_RING)


def use_test_keys() -> None:
    """Point every `Settings()` of this process and its children at the test ring (a developer's own
    CALLBACKS_CODEC_* would otherwise leak into the suite)."""
    for name in ("KEYS_FILE", "COMPANY_KEYS", "COMPANY_KEYS_FILE", "SHREDDED", "SHREDDED_FILE"):
        os.environ.pop(f"CALLBACKS_CODEC_{name}", None)
    os.environ["CALLBACKS_CODEC_KEYS"] = TEST_KEYS
