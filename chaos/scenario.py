"""What a chaos scenario is, and what it reports.

A scenario is a name, the invariant it checks (one sentence, what `--list` prints), and an async body
that breaks something real and then checks the invariant in PostgreSQL, Temporal and the fakes. The
body fills an `Outcome`: figures to print, failures (an unmet invariant), and how many things were lost
or done twice, which the last line of a run adds up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.lab import Lab


@dataclass
class Outcome:
    figures: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0

    @property
    def holds(self) -> bool:
        return not self.failures

    def figure(self, name: str, value: object) -> None:
        self.figures[name] = f"{value:.1f}" if isinstance(value, float) else str(value)

    def check(self, condition: bool, failure: str) -> bool:
        """Record `failure` unless `condition`; returns `condition`."""
        if not condition:
            self.failures.append(failure)
        return condition

    def add_lost(self, count: int, what: str) -> None:
        """`count` things lost (never done, or left undefined); `what` names them, e.g. "callbacks
        that did not expire"."""
        self.lost += count
        self.check(count == 0, f"lost: {count} {what}")

    def add_duplicated(self, count: int, what: str) -> None:
        """`count` things done twice (or more than allowed); `what` names them."""
        self.duplicated += count
        self.check(count == 0, f"duplicated: {count} {what}")

    def line(self, name: str, seconds: float) -> str:
        """One line: name, holds/FAILS, the figures, lost and duplicated, seconds."""
        figures = " ".join(f"{key}={value}" for key, value in self.figures.items())
        verdict = "holds" if self.holds else "FAILS"
        counts = f"lost={self.lost} duplicated={self.duplicated}"
        return f"{name:<26} {verdict:<5}  {figures} {counts}  {seconds:.1f}s"


Body = Callable[["Lab", Outcome], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    """`own_postgres`: the scenario stops and starts its PostgreSQL server, so it gets an embedded one of
    its own; `own_temporal`: it kills its Temporal server, so it gets a dev server of its own with a
    database file. `budget_seconds` bounds the whole scenario, setup and checks included."""

    name: str
    invariant: str
    body: Body
    budget_seconds: float = 120
    own_postgres: bool = False
    own_temporal: bool = False
