"""The project's data converter with the payload codec: one function so that clients, workers and the
Replayer cannot disagree about how payloads are written."""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from codec.keys import KeyRing
from codec.payload import EncryptionCodec


def encrypted_data_converter(keyring: KeyRing, *, encode_failures: bool = True) -> DataConverter:
    """`pydantic_data_converter` with the encryption codec.

    `encode_failures` also moves failure messages and stack traces into an encrypted payload: an
    exception text such as "SMS to +49 151 ... bounced" would otherwise sit in the history in clear.
    The Temporal UI then shows "Encoded failure" unless it reads through the codec server; clients
    built with this converter decode the messages transparently.
    """
    failure_converter_class = (
        DefaultFailureConverterWithEncodedAttributes
        if encode_failures
        else pydantic_data_converter.failure_converter_class
    )
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=failure_converter_class,
    )
