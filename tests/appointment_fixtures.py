"""Helpers of the appointment change tests: time skipping while a client waits on an Update.

The time-skipping test server moves its clock on its own only while a client waits for a workflow
*result*; a client waiting on an Update (every appointment change is one) would wait out retries and
timers in real time. `skipping` lets the server's clock run ahead while the call is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from temporalio.testing import WorkflowEnvironment

T = TypeVar("T")
STEP = timedelta(seconds=5)


async def skipping(env: WorkflowEnvironment, call: Awaitable[T], step: timedelta = STEP) -> T:
    """Await `call` while the test server skips time in `step`s (it skips only while nothing runs)."""
    task = asyncio.ensure_future(call)
    while not task.done():
        sleeper = asyncio.ensure_future(env.sleep(step))
        await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        if not sleeper.done():
            sleeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sleeper
    return await task
