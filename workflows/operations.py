"""The periodic jobs run by Temporal Schedules (starter/schedules.py): the reconciliation sweep and the
data retention job. Deterministic: activities by name, the cutoff from `workflow.now()`."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.operations import (
        RetentionConfig,
        RetentionReport,
        RetentionRequest,
        SweepConfig,
        SweepPage,
        SweepReport,
    )

RECONCILE_WORKFLOW_ID = "callbacks-reconcile"
RETENTION_WORKFLOW_ID = "callbacks-retention"

JOB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


@workflow.defn(name="CallbackReconcileWorkflow")
class CallbackReconcileWorkflow:
    """Pages through the open rows (one activity per page, so a crash resumes at the page it was on),
    then checks the running workflows whose row is not open. Returns what it fixed."""

    @workflow.run
    async def run(self, config: SweepConfig) -> SweepReport:
        total = config.carried.model_copy(deep=True) if config.carried else SweepReport()
        after = config.resume_after
        while True:
            page: SweepReport = await workflow.execute_activity(
                names.RECONCILE_CALLBACKS,
                SweepPage(after=after, limit=config.page_size),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=JOB_RETRY,
                result_type=SweepReport,
            )
            total.add(page)
            if page.next_after is None:
                break
            after = page.next_after
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    SweepConfig(page_size=config.page_size, resume_after=after, carried=total)
                )
        unlisted: SweepReport = await workflow.execute_activity(
            names.RECONCILE_UNLISTED_WORKFLOWS,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=JOB_RETRY,
            result_type=SweepReport,
        )
        total.add(unlisted)
        total.next_after = None
        workflow.logger.info(
            "sweep: %d checked, %d started, %d rewritten, %d failed",
            total.checked,
            total.started,
            total.repersisted,
            total.failed,
        )
        return total


@workflow.defn(name="RetentionWorkflow")
class RetentionWorkflow:
    @workflow.run
    async def run(self, config: RetentionConfig) -> RetentionReport:
        cutoff = workflow.now() - timedelta(days=config.retention_days)
        report: RetentionReport = await workflow.execute_activity(
            names.PURGE_SOFT_DELETED,
            RetentionRequest(cutoff=cutoff, batch_size=config.batch_size),
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=JOB_RETRY,
            result_type=RetentionReport,
        )
        return report
