"""Every chaos scenario, in the order of issue 19 (`make chaos` runs them in this order)."""

from __future__ import annotations

from chaos.scenario import Scenario
from chaos.scenarios import bookings, crashes, lookups, notifications, rows

_ALL = {
    scenario.name: scenario
    for scenario in (
        *crashes.SCENARIOS,
        *rows.SCENARIOS,
        *bookings.SCENARIOS,
        *lookups.SCENARIOS,
        *notifications.SCENARIOS,
    )
}
ORDER = [
    "worker-sigkill",
    "temporal-sigkill",
    "postgres-immediate-stop",
    "dead-references",
    "calcom-late-answer",
    "calcom-429-storm",
    "smtp-slow",
    "webhook-down",
    "cancel-reschedule-race",
    "quota-race",
    "capacity-race",
    "template-bomb",
    "calcom-shared-budget",
]
SCENARIOS: list[Scenario] = [_ALL[name] for name in ORDER]
assert len(SCENARIOS) == len(_ALL), "every scenario has its place in ORDER"

__all__ = ["SCENARIOS"]
