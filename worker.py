"""The Temporal worker: registers the workflows and activities and wires their dependencies."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker

from activities.calcom import CalcomActivities
from activities.callbacks import CallbackActivities
from calcom.client import CalcomClient
from models.settings import Settings, get_settings
from store.db import create_engine, session_factory
from workflows.callback import CallbackWorkflow

WORKFLOWS: Sequence[type] = (CallbackWorkflow,)


def build_worker(
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    calcom: CalcomClient | None = None,
) -> Worker:
    """`calcom`: the shared Cal.com client (its owner closes it); built from settings when not given."""
    callbacks = CallbackActivities(sessions, settings.callback_defaults())
    calcom_activities = CalcomActivities.build(
        calcom or CalcomClient.from_settings(settings),
        sessions,
        cache_ttl_seconds=settings.calcom_cache_ttl_seconds,
        search_chunk_days=settings.calcom_search_chunk_days,
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=[*callbacks.all(), *calcom_activities.all()],
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_local_activities=settings.worker_max_concurrent_activities,
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_task_poller_behavior=PollerBehaviorAutoscaling(),
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    )


async def run(settings: Settings, database_url: str) -> None:
    from starter.temporal import connect

    engine = create_engine(database_url)
    client = await connect(settings)
    calcom = CalcomClient.from_settings(settings)
    worker = build_worker(client, settings, session_factory(engine), calcom)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logging.info("worker polling task queue %r", settings.task_queue)
    try:
        async with worker:
            await stop.wait()
    finally:
        await calcom.aclose()
        await engine.dispose()


def main() -> None:
    from localstack.stack import resolve_database_url

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    asyncio.run(run(settings, asyncio.run(resolve_database_url(settings))))


if __name__ == "__main__":
    main()
