"""The dispatcher of the notification outbox: starts the notification runs of the callback steps that
wrote rows there (store/notification_outbox.py), off the callback's workflow task.

Each step a worker writes kicks it (`kick`), so a run starts some tens of milliseconds after the step is
in PostgreSQL; a sweep every second picks up the rows of the first steps the API writes (no dispatcher
runs there: activities/opening.py) and what a dispatcher that died left behind (a lease expires). An
empty sweep is one indexed statement.
Who hears about an event is resolved here, once, for the whole claimed batch together, through the
process's cached notification settings, and handed to the run, which therefore does not resolve again.
Events nobody is to hear about start nothing. Run ids are deterministic and rejected when taken, so a
row drained twice starts one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.worker import Plugin, ReplayerConfig, Worker, WorkerConfig

from activities import names
from models.notifications import NotifyEvent, PlannedDelivery
from store import notification_outbox as store
from store.db import transaction

log = logging.getLogger(__name__)

# The plans of a batch of events, in order (NotificationActivities.plan_batch).
Resolve = Callable[[AsyncSession, Sequence[NotifyEvent]], Awaitable[list[list[PlannedDelivery]]]]

BATCH = 50
LEASE_SECONDS = 60.0
SWEEP_SECONDS = 1.0
# How long a kick waits before claiming. Concurrent callback steps write their rows within milliseconds
# of each other; draining at once would claim and resolve them one or two at a time, each batch paying
# its few queries. Waiting this long lets them be claimed and resolved as one batch, for a delay nobody
# notices in a notification.
GATHER_SECONDS = 0.05
# Runs started at once (each a call to the Temporal frontend).
STARTS_AT_ONCE = 8


class NotificationOutbox:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        resolve: Resolve,
        client: Client,
        task_queue: str,
        *,
        sweep_seconds: float = SWEEP_SECONDS,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._resolve = resolve
        self._client = client
        self._task_queue = task_queue
        self._sweep_seconds = sweep_seconds
        self._gather_seconds = gather_seconds
        self._wake = asyncio.Event()
        self._starts = asyncio.Semaphore(STARTS_AT_ONCE)

    def kick(self) -> None:
        """A step wrote rows: drain soon (`gather_seconds`) rather than at the next sweep."""
        self._wake.set()

    async def run(self) -> None:
        """Drain at once (what a stopped or dead worker left), then `gather_seconds` after a kick (the
        kicks meanwhile join that drain) and every `sweep_seconds`, until cancelled."""
        while True:
            self._wake.clear()
            try:
                while await self.drain() == BATCH:
                    pass
            except Exception:  # the database or Temporal is away: the rows wait for the next round
                log.exception("notification outbox: drain failed, retrying at the next sweep")
            try:
                await asyncio.wait_for(self._wake.wait(), self._sweep_seconds)
            except TimeoutError:
                continue  # the sweep: nothing was just written, nothing to wait for
            await asyncio.sleep(self._gather_seconds)

    async def drain(self) -> int:
        """Claim one batch, resolve and start its runs, drop the rows that are done. Returns how many
        rows it claimed."""
        async with transaction(self._sessions) as session:
            items = await store.claim(session, limit=BATCH, lease_seconds=LEASE_SECONDS)
        if not items:
            return 0
        async with self._sessions() as session:
            plans = await self._resolve(session, [item.event for item in items])
        results = await asyncio.gather(
            *(self._start(item, planned) for item, planned in zip(items, plans, strict=True)),
            return_exceptions=True,
        )
        for item, result in zip(items, results, strict=True):
            if isinstance(result, BaseException):  # left leased: claimed again when the lease runs out
                log.warning("notification run %s not started: %s", item.workflow_id, type(result).__name__)
        async with transaction(self._sessions) as session:
            await store.done(
                session, [item.id for item, result in zip(items, results, strict=True) if result is None]
            )
        return len(items)

    async def _start(self, item: store.OutboxItem, planned: list[PlannedDelivery]) -> None:
        if not planned:
            return  # nobody to tell on any channel: a run would only find that out again
        async with self._starts:
            try:
                await self._client.start_workflow(
                    names.NOTIFY_EVENT_WORKFLOW,
                    args=[item.event, planned],
                    id=item.workflow_id,
                    task_queue=self._task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                )
            except WorkflowAlreadyStartedError:
                log.info("notification run %s already started", item.workflow_id)


class OutboxPlugin(Plugin):
    """Runs the dispatcher for exactly as long as its worker runs (every way a worker is run: the
    production process, `make dev`, the tests' workers)."""

    def __init__(self, outbox: NotificationOutbox) -> None:
        self.outbox = outbox

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        return config

    async def run_worker(self, worker: Worker, next: Callable[[Worker], Awaitable[None]]) -> None:
        dispatcher = asyncio.create_task(self.outbox.run())
        try:
            await next(worker)
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        return config

    def run_replayer(self, replayer: Any, histories: AsyncIterator[Any], next: Any) -> Any:
        return next(replayer, histories)
