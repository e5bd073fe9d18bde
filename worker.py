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
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.appointments import AppointmentActivities
from activities.calcom import CalcomActivities
from activities.callbacks import CallbackActivities
from activities.notifications import NotificationActivities, NotificationConfig
from activities.policies import PolicyActivities
from calcom.client import CalcomClient
from models.settings import Settings, get_settings
from store.db import create_engine, session_factory
from store.policies import PolicyResolver
from workflows.appointment_change import AppointmentChangeWorkflow
from workflows.callback import CallbackWorkflow
from workflows.notifications import NotifyEventWorkflow
from workflows.policy_stats import PolicyStatsRefreshWorkflow

# The workflow messages validate phone numbers with `phonenumbers`, which loads its region tables lazily
# (an import and a lock at first use): that must happen outside the sandbox, once per process.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("phonenumbers")
)

WORKFLOWS: Sequence[type] = (
    CallbackWorkflow,
    PolicyStatsRefreshWorkflow,
    AppointmentChangeWorkflow,
    NotifyEventWorkflow,
)


def build_worker(
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    policies: PolicyResolver | None = None,
    calcom: CalcomClient | None = None,
) -> Worker:
    """`policies`: the process's (listening, caching) resolver; without one, policies are read uncached.
    `calcom`: the shared Cal.com client (its owner closes it); built from settings when not given."""
    policies = policies if policies is not None else PolicyResolver(sessions)
    callbacks = CallbackActivities(sessions, settings.callback_defaults(), policies)
    policy_activities = PolicyActivities(sessions, policies)
    appointment_activities = AppointmentActivities(sessions, policies)
    calcom_activities = CalcomActivities.build(
        calcom or CalcomClient.from_settings(settings),
        sessions,
        cache_ttl_seconds=settings.calcom_cache_ttl_seconds,
        search_chunk_days=settings.calcom_search_chunk_days,
    )
    notifications = NotificationActivities(sessions, NotificationConfig.from_settings(settings))
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS),
        workflow_runner=WORKFLOW_RUNNER,
        activities=[
            *callbacks.all(),
            *policy_activities.all(),
            *appointment_activities.all(),
            *calcom_activities.all(),
            *notifications.all(),
        ],
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_local_activities=settings.worker_max_concurrent_activities,
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_task_poller_behavior=PollerBehaviorAutoscaling(),
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    )


async def run(settings: Settings, database_url: str) -> None:
    from starter.schedules import ensure_stats_schedule
    from starter.temporal import connect
    from store.policy_cache import PolicyCache

    engine = create_engine(database_url)
    client = await connect(settings)
    sessions = session_factory(engine)
    policies = PolicyResolver(sessions, PolicyCache(ttl_seconds=settings.policy_cache_ttl_seconds))
    await policies.listen(database_url)
    await ensure_stats_schedule(
        client,
        task_queue=settings.task_queue,
        interval=timedelta(minutes=settings.policy_stats_refresh_minutes),
        catchup_window=timedelta(minutes=settings.policy_stats_catchup_minutes),
    )
    calcom = CalcomClient.from_settings(settings)
    worker = build_worker(client, settings, sessions, policies=policies, calcom=calcom)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logging.info("worker polling task queue %r", settings.task_queue)
    try:
        async with worker:
            await stop.wait()
    finally:
        await policies.close()
        await calcom.aclose()
        await engine.dispose()


def main() -> None:
    from localstack.stack import resolve_database_url

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    asyncio.run(run(settings, asyncio.run(resolve_database_url(settings))))


if __name__ == "__main__":
    main()
