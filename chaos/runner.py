"""Runs scenarios one after the other, each in its own lab and within its time budget, and prints one line
per scenario and the summary line. A scenario that raises or runs out of time FAILS with the reason; its
lab is torn down either way."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from chaos.lab import Stack, open_lab
from chaos.scenario import Outcome, Scenario
from codec.keys import new_key_entry


async def run_one(stack: Stack, scenario: Scenario) -> Outcome:
    outcome = Outcome()
    try:
        async with asyncio.timeout(scenario.budget_seconds):
            async with open_lab(stack, scenario) as lab:
                await scenario.body(lab, outcome)
    except TimeoutError:
        outcome.failures.append(f"did not finish within {scenario.budget_seconds:g} s")
    except Exception as error:
        outcome.failures.append(f"raised {type(error).__name__}: {error}")
        traceback.print_exc(file=sys.stderr)
    return outcome


def summary(outcomes: Sequence[Outcome]) -> str:
    held = sum(1 for outcome in outcomes if outcome.holds)
    lost = sum(outcome.lost for outcome in outcomes)
    duplicated = sum(outcome.duplicated for outcome in outcomes)
    return f"chaos: {held}/{len(outcomes)} scenarios hold, lost={lost}, duplicated={duplicated}"


async def run(scenarios: Sequence[Scenario], logs: Path | None = None) -> bool:
    """Run `scenarios`; True when all hold. Logs of the processes go to `logs` (kept) or to a temporary
    folder (removed)."""
    folder = logs or Path(tempfile.mkdtemp(prefix="chaos-"))
    folder.mkdir(parents=True, exist_ok=True)
    stack = Stack(folder, new_key_entry("chaos"))
    outcomes: list[Outcome] = []
    try:
        for scenario in scenarios:
            started = time.monotonic()
            outcome = await run_one(stack, scenario)
            outcomes.append(outcome)
            print(outcome.line(scenario.name, time.monotonic() - started), flush=True)
            for failure in outcome.failures:
                print(f"  {scenario.name}: {failure}", file=sys.stderr, flush=True)
    finally:
        await stack.aclose()
        if logs is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(summary(outcomes), flush=True)
    return all(outcome.holds for outcome in outcomes)
