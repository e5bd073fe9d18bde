"""The Temporal worker: registers the workflows and activities and wires their dependencies."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from datetime import timedelta

import uvloop
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.appointments import AppointmentActivities
from activities.calcom import CalcomActivities
from activities.calcom_sync import CalcomSyncActivities
from activities.callbacks import CallbackActivities
from activities.notification_outbox import NotificationOutbox, OutboxPlugin
from activities.notifications import NotificationActivities, NotificationConfig
from activities.operations import OperationsActivities
from activities.policies import PolicyActivities
from calcom.client import CalcomClient
from calcom.finder import SlotFinder
from config import Settings, get_settings
from config.worker_sizing import worker_sizing
from starter.schedules import ensure_schedules
from store.notification_settings import NotificationSettings
from store.policies import PolicyResolver
from telemetry.asgi_server import serve_asgi
from telemetry.logs import ActivityLogContext, configure_logging
from telemetry.server import metrics_app
from telemetry.tracing import Tracing, process_tracing
from wiring import Services, open_services
from wiring.workflow_runner import LeanWorkflowRunner
from workflows.appointment import AppointmentWorkflow
from workflows.appointment_change import AppointmentChangeWorkflow
from workflows.calcom_sync import CalcomBookingSyncWorkflow
from workflows.callback import CallbackWorkflow
from workflows.notifications import NotifyEventWorkflow
from workflows.operations import CallbackReconcileWorkflow, RetentionWorkflow
from workflows.policy_stats import PolicyStatsRefreshWorkflow

log = logging.getLogger("callbacks.worker")
# After SIGTERM: what the worker gets beyond its activities' grace period to drop its cached workflows.
EVICTION_SECONDS = 3.0

# Production runs the workflows unsandboxed: the sandbox re-imported the workflow modules for every
# workflow it created (a tenth of the worker's time) and kept a module world per cached workflow (most of
# the memory of an open callback). What it guards, determinism, is guarded by the replay tests, which run
# every recorded history through SANDBOXED_RUNNER too (tests/test_replay.py), and by the import contracts
# (workflows import no I/O). It also keeps no activation messages per cached workflow
# (wiring/workflow_runner.py).
WORKFLOW_RUNNER: WorkflowRunner = LeanWorkflowRunner()
# The sandbox with its default restrictions. `phonenumbers` loads its region tables lazily (an import
# and a lock at first use) and `holidays` its country tables, so both pass through.
SANDBOXED_RUNNER: WorkflowRunner = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("phonenumbers", "holidays")
)

WORKFLOWS: Sequence[type] = (
    CallbackWorkflow,
    PolicyStatsRefreshWorkflow,
    AppointmentWorkflow,
    # One run per request, before AppointmentWorkflow: kept so that runs started before it finish.
    AppointmentChangeWorkflow,
    NotifyEventWorkflow,
    CallbackReconcileWorkflow,
    RetentionWorkflow,
    CalcomBookingSyncWorkflow,
)


def build_worker(
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    policies: PolicyResolver | None = None,
    calcom: CalcomClient | None = None,
    slots: SlotFinder | None = None,
    notification_settings: NotificationSettings | None = None,
    statements: AsyncEngine | None = None,
) -> Worker:
    """`policies`, `notification_settings`: the process's (listening, caching) resolvers; without them,
    settings are read uncached. `calcom`: the shared Cal.com client (its owner closes it); built from
    settings when not given. `statements`: the autocommit engine of one-statement step writes (without
    it a step is written in a transaction of `sessions`)."""
    policies = policies if policies is not None else PolicyResolver(sessions)
    policy_activities = PolicyActivities(sessions, policies)
    appointment_activities = AppointmentActivities(sessions, policies)
    calcom_activities = (
        CalcomActivities(slots.client, slots)
        if slots is not None
        else CalcomActivities.build(
            calcom or CalcomClient.from_settings(settings),
            sessions,
            cache_ttl_seconds=settings.calcom_cache_ttl_seconds,
            search_chunk_days=settings.calcom_search_chunk_days,
        )
    )
    notifications = NotificationActivities(
        sessions, NotificationConfig.from_settings(settings), notification_settings
    )
    # The outbox's claims and deletes are single statements, its resolution only reads: on the statements
    # engine each is one round trip.
    outbox = NotificationOutbox(
        async_sessionmaker(statements, expire_on_commit=False) if statements is not None else sessions,
        notifications.plan_batch,
        client,
        settings.task_queue,
    )
    callbacks = CallbackActivities(
        sessions,
        settings.callback_defaults(),
        policies,
        dial_hours=(settings.dial_window_start, settings.dial_window_end),
        statements=statements,
        outbox=outbox,
    )
    operations = OperationsActivities(sessions, settings.callback_defaults(), policies)
    calcom_sync = CalcomSyncActivities(sessions, calcom_activities.client, policies)
    size = worker_sizing(settings)
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
            *operations.all(),
            *calcom_sync.all(),
        ],
        interceptors=[ActivityLogContext()],
        plugins=[OutboxPlugin(outbox)],
        max_concurrent_workflow_tasks=size.max_concurrent_workflow_tasks,
        max_concurrent_activities=size.max_concurrent_activities,
        max_concurrent_local_activities=size.max_concurrent_local_activities,
        max_cached_workflows=size.max_cached_workflows,
        workflow_task_poller_behavior=_pollers(size.workflow_task_pollers),
        activity_task_poller_behavior=_pollers(size.activity_task_pollers),
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    )


def _pollers(maximum: int) -> PollerBehaviorAutoscaling:
    return PollerBehaviorAutoscaling(initial=min(5, maximum), maximum=maximum)


def worker_for(services: Services) -> Worker:
    """The worker of a process whose parts come from the composition root (production and `make dev`)."""
    return build_worker(
        services.temporal,
        services.settings,
        services.sessions,
        policies=services.policies,
        calcom=services.calcom,
        slots=services.slots,
        notification_settings=services.notification_settings,
        statements=services.statements,
    )


WORKER_SERVICE = "callbacks-worker"


async def run(settings: Settings, tracing: Tracing | None = None) -> None:
    async with open_services(settings, tracing=tracing) as services:
        # Every worker makes sure the schedules match its code: the first start creates them, a deploy of
        # new settings updates them, and a scaled-out fleet only repeats the same idempotent update.
        for item, created in await ensure_schedules(services.temporal, settings):
            log.info(
                "schedule %s %s: %s",
                item.schedule_id,
                "created" if created else "up to date",
                item.description,
            )
        worker = worker_for(services)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with (
            worker,
            serve_asgi(
                metrics_app(services.sdk.url if services.sdk else None, healthy=lambda: worker.is_running),
                settings.worker_metrics_host,
                settings.worker_metrics_port,
            ) as metrics_url,
        ):
            log.info("worker polling task queue %r; metrics at %s/metrics", settings.task_queue, metrics_url)
            await stop.wait()
            await stop_within(worker, settings.worker_graceful_shutdown_seconds + EVICTION_SECONDS)


async def stop_within(worker: Worker, seconds: float) -> None:
    """Stop polling at once, let running activities finish (`graceful_shutdown_timeout`), and end the
    process after `seconds` at the latest. What is left by then is the teardown of the cached workflows,
    one by one (thousands with thousands of open callbacks): that state lives in Temporal's histories
    anyway, the server hands their next tasks to another worker, and nothing is lost by not tidying up
    this process's copy of it."""
    try:
        await asyncio.wait_for(asyncio.shield(worker.shutdown()), seconds)
    except TimeoutError:
        log.warning("worker not stopped after %.0f s: leaving its cached workflows as they are", seconds)
        logging.shutdown()
        os._exit(0)


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # Traced when OTEL_EXPORTER_OTLP_ENDPOINT is set: the client's interceptor covers this worker's tasks.
    tracing = process_tracing(settings, WORKER_SERVICE)
    try:
        # uvloop: the worker's event loop runs every activity, poll and completion; libuv's loop and
        # transports take a few per cent of its time off the hot path (the workflows run on the SDK's
        # own deterministic loop either way).
        uvloop.run(run(settings, tracing))
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    main()
