"""PolicyStatsRefreshWorkflow: recounts `appointment_modification_stats` (run by a Temporal Schedule,
see starter/schedules.py). Deterministic: one activity, referenced by name."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.policies import StatsRefreshed

STATS_WORKFLOW_ID = "policy-stats-refresh"


@workflow.defn(name="PolicyStatsRefreshWorkflow")
class PolicyStatsRefreshWorkflow:
    @workflow.run
    async def run(self) -> StatsRefreshed:
        refreshed: StatsRefreshed = await workflow.execute_activity(
            names.REFRESH_MODIFICATION_STATS,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(minutes=1),
                maximum_attempts=5,
            ),
            result_type=StatsRefreshed,
        )
        return refreshed
