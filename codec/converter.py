"""The project's data converter with the payload codec: one function so that clients, workers and the
Replayer cannot disagree about how payloads are written."""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

from codec.keys import KeyRing
from codec.payload import EncryptionCodec

# One JSON converter per process. The SDK builds a payload converter for every workflow it runs; with
# pydantic's, every workflow built its own TypeAdapters (a schema validator and serializer per type it
# reads or writes) and kept them for as long as it stayed cached: the largest part of an open callback's
# memory in the worker, and CPU at every creation. Type adapters are thread-safe and depend on the type
# alone, so all workflows share these.
SHARED_JSON = PydanticJSONPlainPayloadConverter()


class SharedPydanticPayloadConverter(CompositePayloadConverter):
    """`PydanticPayloadConverter`, with the process's one JSON converter (and its type adapter cache)."""

    def __init__(self) -> None:
        super().__init__(
            *(
                SHARED_JSON if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


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
        payload_converter_class=SharedPydanticPayloadConverter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=failure_converter_class,
    )
