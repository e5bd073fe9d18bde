"""Every chaos scenario, in the order `make chaos` runs them (issue 19)."""

from __future__ import annotations

from chaos.scenario import Scenario
from chaos.scenarios import crashes, rows

SCENARIOS: list[Scenario] = [*crashes.SCENARIOS, *rows.SCENARIOS]

__all__ = ["SCENARIOS"]
