"""Temporal Schedules of the engine, created or updated idempotently (safe to call on every start)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

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

from workflows.policy_stats import STATS_WORKFLOW_ID, PolicyStatsRefreshWorkflow

STATS_SCHEDULE_ID = "policy-stats-refresh"


def stats_schedule(
    task_queue: str, interval: timedelta, catchup_window: timedelta, workflow_id: str = STATS_WORKFLOW_ID
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PolicyStatsRefreshWorkflow.run,
            id=workflow_id,
            task_queue=task_queue,
            execution_timeout=max(interval, timedelta(minutes=10)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        # A refresh still running when the next one is due makes that one unnecessary; after an outage,
        # one catch-up run within the window is enough (the refresh recounts everything anyway).
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup_window),
    )


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
    schedule = stats_schedule(task_queue, interval, catchup_window, workflow_id)
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # Keep the operator's state (paused, notes); replace what this code owns.
            return ScheduleUpdate(
                schedule=dataclasses.replace(schedule, state=current.description.schedule.state)
            )

        await client.get_schedule_handle(schedule_id).update(replace)
