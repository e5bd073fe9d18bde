"""Temporal Schedules of the engine, created or updated idempotently (safe to call on every start).

Four jobs, each a small workflow started by its schedule: the policy stats refresh, the reconciliation
sweep, the data retention job and the reconciliation of Cal.com bookings (missed webhooks). Every
schedule skips a run while the previous one still runs (each job redoes all its work anyway, so a queued
run would only repeat it) and catches up at most one missed run within its catch-up window after an
outage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from config import Settings
from models.calcom_bookings import BookingSyncConfig
from models.operations import RetentionConfig, SweepConfig
from workflows.calcom_sync import CALCOM_SYNC_WORKFLOW_ID, CalcomBookingSyncWorkflow
from workflows.operations import (
    RECONCILE_WORKFLOW_ID,
    RETENTION_WORKFLOW_ID,
    CallbackReconcileWorkflow,
    RetentionWorkflow,
)
from workflows.policy_stats import STATS_WORKFLOW_ID, PolicyStatsRefreshWorkflow

STATS_SCHEDULE_ID = "policy-stats-refresh"
RECONCILE_SCHEDULE_ID = "callbacks-reconcile"
RETENTION_SCHEDULE_ID = "callbacks-retention"
CALCOM_SYNC_SCHEDULE_ID = "calcom-bookings-sync"


@dataclass(frozen=True)
class EngineSchedule:
    schedule_id: str
    schedule: Schedule
    description: str


def _schedule(
    workflow: Any,
    arg: Any,
    *,
    workflow_id: str,
    task_queue: str,
    interval: timedelta,
    catchup_window: timedelta,
    run_timeout: timedelta,
) -> Schedule:
    args = [] if arg is None else [arg]
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow, args=args, id=workflow_id, task_queue=task_queue, execution_timeout=run_timeout
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup_window),
    )


def stats_schedule(
    task_queue: str, interval: timedelta, catchup_window: timedelta, workflow_id: str = STATS_WORKFLOW_ID
) -> Schedule:
    return _schedule(
        PolicyStatsRefreshWorkflow.run,
        None,
        workflow_id=workflow_id,
        task_queue=task_queue,
        interval=interval,
        catchup_window=catchup_window,
        run_timeout=max(interval, timedelta(minutes=10)),
    )


def engine_schedules(settings: Settings, *, prefix: str = "") -> list[EngineSchedule]:
    """The schedules this version of the engine owns, from the settings. `prefix` namespaces the ids
    (tests share one server)."""
    queue = settings.task_queue
    stats_every = timedelta(minutes=settings.policy_stats_refresh_minutes)
    sweep_every = timedelta(minutes=settings.reconcile_every_minutes)
    retention_every = timedelta(hours=settings.retention_every_hours)
    calcom_every = timedelta(minutes=settings.calcom_sync_every_minutes)
    return [
        EngineSchedule(
            prefix + STATS_SCHEDULE_ID,
            stats_schedule(
                queue,
                stats_every,
                timedelta(minutes=settings.policy_stats_catchup_minutes),
                prefix + STATS_WORKFLOW_ID,
            ),
            f"policy stats refresh every {stats_every}",
        ),
        EngineSchedule(
            prefix + RECONCILE_SCHEDULE_ID,
            _schedule(
                CallbackReconcileWorkflow.run,
                SweepConfig(
                    page_size=settings.reconcile_page_size,
                    rows_per_run=settings.reconcile_rows_per_run,
                    settle_minutes=settings.reconcile_settle_minutes,
                ),
                workflow_id=prefix + RECONCILE_WORKFLOW_ID,
                task_queue=queue,
                interval=sweep_every,
                catchup_window=timedelta(minutes=settings.reconcile_catchup_minutes),
                run_timeout=max(sweep_every * 3, timedelta(hours=1)),
            ),
            f"reconciliation sweep every {sweep_every}",
        ),
        EngineSchedule(
            prefix + RETENTION_SCHEDULE_ID,
            _schedule(
                RetentionWorkflow.run,
                RetentionConfig(
                    retention_days=settings.retention_days, batch_size=settings.retention_batch_size
                ),
                workflow_id=prefix + RETENTION_WORKFLOW_ID,
                task_queue=queue,
                interval=retention_every,
                catchup_window=timedelta(hours=settings.retention_catchup_hours),
                run_timeout=max(retention_every, timedelta(hours=1)),
            ),
            f"purge rows soft-deleted over {settings.retention_days:g} days ago, every {retention_every}",
        ),
        EngineSchedule(
            prefix + CALCOM_SYNC_SCHEDULE_ID,
            _schedule(
                CalcomBookingSyncWorkflow.run,
                BookingSyncConfig(days=settings.calcom_sync_days),
                workflow_id=prefix + CALCOM_SYNC_WORKFLOW_ID,
                task_queue=queue,
                interval=calcom_every,
                catchup_window=timedelta(minutes=settings.calcom_sync_catchup_minutes),
                run_timeout=max(calcom_every * 3, timedelta(hours=1)),
            ),
            f"Cal.com bookings of the last and next {settings.calcom_sync_days} days, every {calcom_every}",
        ),
    ]


async def ensure_schedule(client: Client, schedule_id: str, schedule: Schedule) -> bool:
    """Create the schedule, or bring an existing one in line (keeping its paused state and notes, which
    belong to the operator). Returns whether it was created."""
    try:
        await client.create_schedule(schedule_id, schedule)
        return True
    except ScheduleAlreadyRunningError:

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(
                schedule=dataclasses.replace(schedule, state=current.description.schedule.state)
            )

        await client.get_schedule_handle(schedule_id).update(replace)
        return False


async def ensure_schedules(
    client: Client, settings: Settings, *, prefix: str = ""
) -> Sequence[tuple[EngineSchedule, bool]]:
    """Every schedule of the engine, created or updated; with whether each was created now."""
    done = []
    for item in engine_schedules(settings, prefix=prefix):
        done.append((item, await ensure_schedule(client, item.schedule_id, item.schedule)))
    return done


async def ensure_stats_schedule(
    client: Client,
    *,
    task_queue: str,
    interval: timedelta = timedelta(minutes=15),
    catchup_window: timedelta = timedelta(minutes=10),
    schedule_id: str = STATS_SCHEDULE_ID,
    workflow_id: str = STATS_WORKFLOW_ID,
) -> None:
    """Create the stats refresh schedule, or bring an existing one in line with these arguments."""
    await ensure_schedule(
        client, schedule_id, stats_schedule(task_queue, interval, catchup_window, workflow_id)
    )
