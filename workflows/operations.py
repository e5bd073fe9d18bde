"""The periodic jobs run by Temporal Schedules (starter/schedules.py): the reconciliation sweep and the
data retention job. Deterministic: activities by name, the cutoff from `workflow.now()`."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

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
# Since this patch a run checks at most `rows_per_run` rows, resumes where the last run stopped, and
# does not query the workflows of rows written within `settle_minutes`.
SWEEP_BUDGET_PATCH = "sweep-budget-v1"
RETENTION_WORKFLOW_ID = "callbacks-retention"

JOB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


@workflow.defn(name="CallbackReconcileWorkflow")
class CallbackReconcileWorkflow:
    """Pages through the open rows (one activity per page, so a crash resumes at the page it was on),
    then checks the running workflows whose row is not open. Returns what it fixed.

    Bounded: a run looks at no more than `rows_per_run` rows (each may cost a describe and a query of its
    workflow, which a worker answers); the next scheduled run carries on from where this one stopped, so
    every row still comes round, just not every row every ten minutes. The running workflow of a row
    written within `settle_minutes` is not queried: it is writing that row right now."""

    @workflow.run
    async def run(self, config: SweepConfig) -> SweepReport:
        total = config.carried.model_copy(deep=True) if config.carried else SweepReport()
        after = config.resume_after
        budgeted = workflow.patched(SWEEP_BUDGET_PATCH)
        settled_before = None
        if budgeted:
            if after is None and config.carried is None:
                after = _where_the_last_run_stopped()
            if config.settle_minutes:
                settled_before = workflow.now() - timedelta(minutes=config.settle_minutes)
        while True:
            limit = config.page_size
            if budgeted and config.rows_per_run is not None:
                limit = min(limit, config.rows_per_run - total.checked)
            page: SweepReport = await workflow.execute_activity(
                names.RECONCILE_CALLBACKS,
                SweepPage(after=after, limit=limit, settled_before=settled_before),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=JOB_RETRY,
                result_type=SweepReport,
            )
            total.add(page)
            if page.next_after is None:
                break
            after = page.next_after
            if budgeted and config.rows_per_run is not None and total.checked >= config.rows_per_run:
                break  # the budget of this run is spent: the next run resumes at `after`
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(config.model_copy(update={"resume_after": after, "carried": total}))
        unlisted: SweepReport = await workflow.execute_activity(
            names.RECONCILE_UNLISTED_WORKFLOWS,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=JOB_RETRY,
            result_type=SweepReport,
        )
        total.add(unlisted)
        total.next_after = page.next_after if budgeted else None
        workflow.logger.info(
            "sweep: %d checked, %d started, %d rewritten, %d failed",
            total.checked,
            total.started,
            total.repersisted,
            total.failed,
        )
        return total


def _where_the_last_run_stopped() -> UUID | None:
    """The cursor the previous scheduled run left (its result), if it stopped before the end."""
    if not workflow.has_last_completion_result():
        return None
    last = workflow.get_last_completion_result(SweepReport)
    return last.next_after if last is not None else None


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
