"""Every operation of the OpenAPI document, with every check of Schemathesis, in all its phases (examples,
coverage, fuzzing, stateful): the API accepts what its document says it accepts, refuses the rest with a
documented 4xx problem, never answers 5xx, answers a method a path lacks with 405 and the path's exact
`Allow`, and its answers match their schemas. The stateful phase follows the links Schemathesis infers (a
created callback is read, acted on, deleted …).

The same run as `st run <api>/openapi.json --checks all` (docs/operations.md), through Schemathesis' engine,
against the real app on loopback (tests/schema_server.py) with an admin key of a real tenant, judged by the
same project configuration (schemathesis.toml: the business rules per operation). Any failure fails.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status
from schemathesis.engine import events as engine_events
from sqlalchemy.engine import URL

from tests.schema_server import LiveApi, live_api

EXAMPLES_PER_OPERATION = 6
# The project's Schemathesis configuration, the one `st run` reads: per operation, the business rules the
# document cannot state (422 expected for schema-valid data) and the reads of an erased customer.
CONFIG_FILE = Path(__file__).parent.parent / "schemathesis.toml"


@pytest.fixture(scope="module")
def live(pg_server: URL, template_database: str) -> Iterator[LiveApi]:
    with live_api(pg_server, template_database) as api:
        yield api


def _config(live: LiveApi) -> SchemathesisConfig:
    """schemathesis.toml, plus what only this run knows: the key, and a small deterministic sample."""
    settings = tomllib.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    settings["headers"] = live.headers
    settings["generation"] = {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True}
    return SchemathesisConfig.from_dict(settings, base_dir=str(CONFIG_FILE.parent))


def _failures(event: engine_events.ScenarioFinished) -> list[str]:
    found = []
    for case_id, checks in event.recorder.checks.items():
        interaction = event.recorder.interactions.get(case_id)
        answer = ""
        if interaction is not None and interaction.response is not None:
            response = interaction.response
            answer = f"{response.status_code} {response.content[:300].decode(errors='replace')}"
        for check in checks:
            if check.status is Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                found.append(
                    f"{event.recorder.label}: {failure.code} {failure.title}\n    {failure.message[:300]}\n"
                    f"    {answer}\n    {check.failure_info.code_sample[:400]}"
                )
    return found


@pytest.mark.timeout(600)
def test_every_operation_with_every_check(live: LiveApi) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json", config=_config(live))
    failures: list[str] = []
    errors: list[str] = []
    scenarios = 0
    finished = None
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            scenarios += 1
            failures += _failures(event)
        elif isinstance(event, engine_events.NonFatalError | engine_events.FatalError):
            errors.append(repr(event))
        elif isinstance(event, engine_events.EngineFinished):
            finished = event
    assert finished is not None
    failures += [f"{failure.code} {failure.title}: {failure.message[:300]}" for failure in finished.failures]
    assert not errors, "\n".join(errors)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(sorted(set(failures))[:60])
    assert scenarios >= 68  # every operation ran (the document has 68)
