"""`make chaos` is not part of the suite (it breaks real processes for minutes); this only checks that
`python -m chaos --list` names every scenario of issue 19 with the invariant it checks, and that an
unknown name is refused before anything starts."""

from __future__ import annotations

import re
import subprocess
import sys

from devstack.processes import ROOT

ISSUE_SCENARIOS = 13


def _chaos(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_every_scenario_has_a_name_and_an_invariant() -> None:
    listed = _chaos("--list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == ISSUE_SCENARIOS
    names = []
    for line in lines:
        name, _, invariant = line.partition(": ")
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), line
        assert len(invariant.split()) >= 8, f"{name}: the invariant says too little: {invariant!r}"
        names.append(name)
    assert len(set(names)) == len(names), "scenario names are unique"
    # In the issue's order, from the worker killed mid-escalation to the shared Cal.com budget.
    assert names[0] == "worker-sigkill"
    assert names[-1] == "calcom-shared-budget"


def test_an_unknown_scenario_is_refused_before_anything_starts() -> None:
    refused = _chaos("--only", "no-such-scenario")
    assert refused.returncode == 2
    assert "unknown scenario no-such-scenario" in refused.stderr
    assert refused.stdout == ""
