"""Connecting to Temporal the one way every process does it (pydantic data converter included)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from models.settings import Settings

LOCAL_TEMPORAL_ADDRESS = "127.0.0.1:7233"


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """`runtime`: the process's Temporal runtime when its SDK metrics are exported (telemetry/runtime.py)."""
    return await Client.connect(
        settings.temporal_address or LOCAL_TEMPORAL_ADDRESS,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
