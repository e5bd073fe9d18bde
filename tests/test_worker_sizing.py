"""A worker is sized from the open callbacks it should hold, within its memory budget."""

from __future__ import annotations

from config import Settings
from config.worker_sizing import BASE_MIB, KIB_PER_CACHED, worker_sizing


def test_the_cache_holds_every_open_callback_with_headroom_and_the_slots_stay_bounded() -> None:
    small, large = worker_sizing(Settings(worker_open_callbacks=500)), worker_sizing(Settings())
    assert small.max_cached_workflows == 700  # at least 200 for notification runs
    assert worker_sizing(Settings(worker_open_callbacks=3000)).max_cached_workflows == 3300
    assert (small.max_concurrent_workflow_tasks, large.max_concurrent_workflow_tasks) == (32, 40)
    assert worker_sizing(Settings(worker_open_callbacks=1_000_000)).max_concurrent_workflow_tasks == 96
    assert small.max_concurrent_local_activities == small.max_concurrent_workflow_tasks


def test_the_memory_budget_caps_the_cache_and_explicit_limits_win() -> None:
    default = worker_sizing(Settings(worker_open_callbacks=10_000))
    assert default.max_cached_workflows == (1024 - BASE_MIB) * 1024 // KIB_PER_CACHED < 10_000
    assert BASE_MIB + default.max_cached_workflows * KIB_PER_CACHED / 1024 <= 1024
    roomy = worker_sizing(Settings(worker_open_callbacks=10_000, worker_memory_mib=4096))
    assert roomy.max_cached_workflows == 11_000
    pinned = Settings(worker_max_cached_workflows=123, worker_max_concurrent_workflow_tasks=7)
    assert (
        worker_sizing(pinned).max_cached_workflows,
        worker_sizing(pinned).max_concurrent_workflow_tasks,
    ) == (
        123,
        7,
    )
