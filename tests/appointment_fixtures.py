"""Helpers of the appointment change tests: a worker with its typed client, the test server's clock, and
time skipping while a client waits on an Update (stored appointments: tests/appointment_records.py).

The time-skipping test server moves its clock on its own only while a client waits for a workflow
*result*; a client waiting on an Update (every appointment change is one) would wait out retries and
timers in real time. `skipping` lets the server's clock run ahead while the call is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from temporalio.testing import WorkflowEnvironment

from calcom.client import CalcomClient
from config import Settings
from starter.appointments import AppointmentClient
from tests.appointment_records import Sessions
from worker import build_worker

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


BERLIN = ZoneInfo("Europe/Berlin")


@asynccontextmanager
async def appointment_worker(
    env: WorkflowEnvironment, sessions: Sessions, task_queue: str, calcom: CalcomClient
) -> AsyncIterator[AppointmentClient]:
    async with build_worker(env.client, Settings(task_queue=task_queue), sessions, calcom=calcom):
        yield AppointmentClient(env.client, task_queue)


async def server_now(env: WorkflowEnvironment) -> datetime:
    return (await env.get_current_time()).replace(microsecond=0)
