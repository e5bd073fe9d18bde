"""CalcomBookingSyncWorkflow: reconciles Cal.com's bookings with the appointments for missed webhooks (run
by a Temporal Schedule, starter/schedules.py). For every company booked through Cal.com, one activity reads
the bookings starting from `days` ago to `days` ahead and applies them (activities/calcom_sync.py).
Deterministic: activities by name, the window from `workflow.now()`."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.calcom_bookings import BookingSyncConfig, SyncBookings, SyncReport

CALCOM_SYNC_WORKFLOW_ID = "calcom-bookings-sync"

SYNC_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


@workflow.defn(name="CalcomBookingSyncWorkflow")
class CalcomBookingSyncWorkflow:
    @workflow.run
    async def run(self, config: BookingSyncConfig) -> list[SyncReport]:
        now = workflow.now()
        window = timedelta(days=config.days)
        companies: list[int] = await workflow.execute_activity(
            names.CALCOM_SYNC_COMPANIES,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=SYNC_RETRY,
            result_type=list[int],
        )
        reports = []
        for company_id in companies:
            try:
                report: SyncReport = await workflow.execute_activity(
                    names.CALCOM_SYNC_BOOKINGS,
                    SyncBookings(company_id=company_id, after=now - window, before=now + window),
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=timedelta(minutes=2),
                    retry_policy=SYNC_RETRY,
                    result_type=SyncReport,
                )
            except ActivityError as err:  # one company's Cal.com trouble does not stop the others
                report = SyncReport(company_id=company_id, failed=1, problems=[str(err.cause or err)])
            reports.append(report)
        workflow.logger.info(
            "Cal.com sync: %d companies, %d bookings, %d created, %d updated, %d failed",
            len(reports),
            sum(r.seen for r in reports),
            sum(r.created for r in reports),
            sum(r.updated for r in reports),
            sum(r.failed for r in reports),
        )
        return reports
