"""How big a worker is, derived from one number: the open callbacks it should hold.

Every open callback waits on a timer in its workflow; when the workflow is in the worker's cache, the
timer firing (or a staff action) costs one short workflow task, and when it is not, the worker first
replays the callback's history (a few milliseconds: a dozen events). So the cache holds every open
callback plus headroom for the short-lived notification runs, as far as `worker_memory_mib` allows: past
that, the least recently used ones are evicted and replayed when their timer fires, hours later.
Workflow task slots and local activity slots are bounded on purpose: the
worker has a couple of cores whatever its cache, and a slot taken beyond what the cores can run only makes
every task slower. After a restart with thousands of due SLA steps that is what decides whether each
workflow task finishes in milliseconds or waits seconds for its local activities (Temporal logs those
over 5 s as "workflow task duration exceeded"); measured with `python -m bench.callbacks`.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings

# Cached workflows beyond the open callbacks: notification runs, staff actions on closed callbacks.
CACHE_HEADROOM = 0.1
CACHE_MINIMUM_EXTRA = 200
# Memory: the worker process without cached workflows, and one cached callback workflow (both measured
# with `python -m bench.callbacks`: ~160 MiB, ~93 KiB since the API opens callbacks, most of it the SDK's
# per-run state), each with a margin.
BASE_MIB = 200
KIB_PER_CACHED = 100
# Concurrent workflow tasks: a task holds its slot while its local activities (the step's reads and
# write) run, so enough for the steps in flight to wait on PostgreSQL rather than on a slot.
WORKFLOW_TASK_SLOTS = (32, 96)
# Open callbacks per workflow task slot above the minimum.
CALLBACKS_PER_SLOT = 250


@dataclass(frozen=True)
class WorkerSizing:
    max_cached_workflows: int
    max_concurrent_workflow_tasks: int
    max_concurrent_activities: int
    max_concurrent_local_activities: int
    workflow_task_pollers: int
    activity_task_pollers: int


def worker_sizing(settings: Settings) -> WorkerSizing:
    """The worker's limits for `settings.worker_open_callbacks`; an explicitly set limit wins."""
    target = settings.worker_open_callbacks
    low, high = WORKFLOW_TASK_SLOTS
    workflow_tasks = settings.worker_max_concurrent_workflow_tasks or min(
        high, max(low, target // CALLBACKS_PER_SLOT)
    )
    activities = settings.worker_max_concurrent_activities or 2 * workflow_tasks
    fits = max(CACHE_MINIMUM_EXTRA, (settings.worker_memory_mib - BASE_MIB) * 1024 // KIB_PER_CACHED)
    cache = settings.worker_max_cached_workflows or min(
        fits, target + max(CACHE_MINIMUM_EXTRA, int(target * CACHE_HEADROOM))
    )
    return WorkerSizing(
        max_cached_workflows=cache,
        max_concurrent_workflow_tasks=workflow_tasks,
        max_concurrent_activities=activities,
        # Each workflow task of a callback runs at most one local activity at a time.
        max_concurrent_local_activities=workflow_tasks,
        workflow_task_pollers=max(2, workflow_tasks // 4),
        activity_task_pollers=max(2, activities // 8),
    )
