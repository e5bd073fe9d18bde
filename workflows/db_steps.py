"""The callback workflow's database steps (local activities), retried with a bound and a visible end.

A step whose failures are permanent (a refused reference, a dead reference, a full capacity: non-retryable
ApplicationErrors) raises at once, for the workflow to handle. A transient failure (a lost connection, a
lock wait that timed out, a restarting database) is retried in rounds (rules/stuck.py): a round is a few
quick attempts inside the worker, then the workflow sleeps on a timer with a capped backoff. Past the
threshold the callback is marked stuck (the `stuck` query, the `CallbackStuck` search attribute and a row
in `callback_stuck`, which the API, the console and the `callbacks_stuck_workflows` gauge show); once the
step gets through, all of that clears. After `GIVE_UP_AFTER` the workflow stops retrying on its own and
waits, still marked, for an operator's `retry_stuck` signal (docs/operations.md, "Stuck callbacks").

New commands only ever follow a failed round, behind the patch `stuck-flag-v1`: a history recorded before
(whose steps were retried without end, so never failed transiently) replays unchanged.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models import search_attributes
    from models.stuck import ClearStuck, StuckMark, StuckStep
    from rules import stuck as rules

STUCK_PATCH = "stuck-flag-v1"
DB_TIMEOUT = timedelta(seconds=15)
NON_RETRYABLE = ["InvalidReference"]
# The retry policy of histories from before the stuck flag: without end.
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=NON_RETRYABLE,
)
# One round: quick attempts inside the worker, then the workflow decides (rules/stuck.py).
ROUND = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_attempts=rules.ROUND_ATTEMPTS,
    non_retryable_error_types=NON_RETRYABLE,
)
# Once stuck, one attempt per round: the timers between rounds do the waiting.
ONCE = RetryPolicy(maximum_attempts=1, non_retryable_error_types=NON_RETRYABLE)


def permanent(err: ActivityError | ApplicationError) -> bool:
    """A failure no retry can cure (the activity said so): the workflow handles it instead."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    return isinstance(cause, ApplicationError) and (cause.non_retryable or cause.type in NON_RETRYABLE)


def failure_kind(err: ActivityError | ApplicationError) -> str:
    """The failure's type, never its message (which may quote a row's values)."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
    return kind[:200]


def stuck_refusal(stuck: StuckMark) -> str:
    """Why a staff action on a stuck callback is refused (its Update validator)."""
    since = stuck.since.isoformat(timespec="seconds")
    how = "waiting for an operator" if stuck.gave_up_at else "retrying"
    return f"the callback is stuck: its {stuck.step.value} step fails since {since} ({how}); try again later"


@dataclass
class _Trouble:
    """The failures of the step in progress: since when (the give-up clock), how many rounds."""

    since: datetime
    rounds: int = 0


class DatabaseSteps:
    """Runs one callback's database steps; holds its stuck mark between them."""

    def __init__(self, callback_id: UUID, company_id: int) -> None:
        self._callback_id = callback_id
        self._company_id = company_id
        self.stuck: StuckMark | None = None
        # The database may hold a mark of this callback that is still to be cleared.
        self._recorded = False
        self._retry_now = False

    async def run(
        self, step: StuckStep, activity: str, argument: Any, result_type: type | None = None
    ) -> Any:
        """The step's result once it gets through; raises its permanent failure."""
        trouble: _Trouble | None = None
        while True:
            try:
                result = await workflow.execute_local_activity(
                    activity,
                    argument,
                    result_type=result_type,
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=ONCE if self.stuck else ROUND,
                )
            except (ActivityError, ApplicationError) as err:
                if permanent(err) or not workflow.patched(STUCK_PATCH):
                    raise
                trouble = trouble or _Trouble(since=workflow.now())
                trouble.rounds += 1
                await self._failed(step, failure_kind(err), trouble)
                continue
            if self.stuck is not None or self._recorded:
                await self._recovered(cleared_by_step=step is StuckStep.PERSIST)
            return result

    def retry_now(self) -> None:
        """An operator's `retry_stuck`: try the step again at once (and again on its own after giving up)."""
        self._retry_now = True

    async def _failed(self, step: StuckStep, error: str, trouble: _Trouble) -> None:
        now = workflow.now()
        if self.stuck is None and not rules.is_stuck(trouble.rounds, trouble.since, now):
            await self._wait(rules.backoff(trouble.rounds))
            return
        if self.stuck is None:
            workflow.logger.warning("callback %s is stuck at %s (%s)", self._callback_id, step.value, error)
            workflow.upsert_search_attributes([search_attributes.CALLBACK_STUCK.value_set(True)])
            self.stuck = StuckMark(
                callback_id=self._callback_id,
                company_id=self._company_id,
                step=step,
                since=trouble.since,
                failed_rounds=trouble.rounds,
                error=error,
            )
        else:
            rounds = self.stuck.failed_rounds + 1
            self.stuck = self.stuck.model_copy(update={"step": step, "failed_rounds": rounds, "error": error})
        if not rules.gives_up(trouble.since, now):
            await self._record(self.stuck)
            await self._wait(rules.backoff(trouble.rounds))
            return
        self.stuck = self.stuck.model_copy(update={"gave_up_at": now})
        await self._record(self.stuck)
        workflow.logger.error(
            "callback %s gave up retrying %s: waiting for retry_stuck", self._callback_id, step.value
        )
        self._retry_now = False
        await workflow.wait_condition(lambda: self._retry_now)
        # An operator fixed the cause (or wants another try): the give-up clock starts again.
        trouble.since, trouble.rounds = workflow.now(), 0
        self.stuck = self.stuck.model_copy(update={"gave_up_at": None})
        await self._record(self.stuck)

    async def _wait(self, backoff: timedelta) -> None:
        """The backoff, cut short by an operator's `retry_stuck`."""
        self._retry_now = False
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._retry_now, timeout=backoff)

    async def _record(self, mark: StuckMark) -> None:
        """Best effort: when the database is what fails, the mark cannot be written either, and the search
        attribute and the `stuck` query are what shows it (the next round tries again)."""
        try:
            await workflow.execute_local_activity(
                names.MARK_STUCK, mark, start_to_close_timeout=DB_TIMEOUT, retry_policy=ONCE
            )
            self._recorded = True
        except (ActivityError, ApplicationError) as err:
            workflow.logger.warning("callback %s: stuck mark not written (%s)", self._callback_id, err)

    async def _recovered(self, *, cleared_by_step: bool) -> None:
        """The step got through: no longer stuck. A successful write deleted the mark with it; after a
        read, the mark is deleted here (or, should that fail, with the callback's next write)."""
        if self.stuck is not None:
            workflow.logger.info("callback %s is no longer stuck at %s", self._callback_id, self.stuck.step)
            workflow.upsert_search_attributes([search_attributes.CALLBACK_STUCK.value_set(False)])
            self.stuck = None
        if cleared_by_step:
            self._recorded = False
            return
        try:
            await workflow.execute_local_activity(
                names.CLEAR_STUCK,
                ClearStuck(callback_id=self._callback_id),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=ROUND,
            )
            self._recorded = False
        except (ActivityError, ApplicationError) as err:
            workflow.logger.warning("callback %s: stuck mark not cleared yet (%s)", self._callback_id, err)
