"""Every operation of the OpenAPI document, with every check of Schemathesis, in all its phases (examples,
coverage, fuzzing, stateful): the API accepts what its document says it accepts, refuses the rest with a
documented 4xx problem, never answers 5xx, answers a method a path lacks with 405 and the path's exact
`Allow`, and its answers match their schemas. The stateful phase follows the links Schemathesis infers (a
created callback is read, acted on, deleted …).

The same run as `st run <api>/openapi.json --checks all` (docs/operations.md), through Schemathesis' engine,
against the real app on loopback (tests/schema_server.py) with an admin key of a real tenant. Replaces the
hand-written fuzz that tests/test_api_input.py had.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status
from schemathesis.engine import events as engine_events
from sqlalchemy.engine import URL

from tests.schema_server import LiveApi, live_api

EXAMPLES_PER_OPERATION = 6
# What the document cannot state yet, so Schemathesis finds schema-valid requests the API refuses (ST202).
# Each entry: the failure code, a phrase of the refusal, and why it is not in the schema (issue 18, part 3).
KNOWN_GAPS: list[tuple[str, str, str]] = [
    ("ST202", "before it starts", "closures: the end after the start (JSON Schema cannot compare fields)"),
    ("ST202", "must open before it closes", "weekly hours: an interval opens before it closes (comparison)"),
    ("ST202", "overlap", "weekly hours: the intervals of a day do not overlap (comparison)"),
    ("ST202", "end must be after start", "preferred time window: the end after the start (comparison)"),
    ("ST202", "at most 90 days", "preferred time window: at most 90 days (a difference of two fields)"),
    ("ST202", "/None", "stateful links that carry a null id (an unassigned callback's assigned_to)"),
    ("ST202", "must be after starts_at", "absences: the end after the start (field comparison)"),
    ("ST202", "the window ends", "slot windows: the end after the start (parameter comparison)"),
    ("ST202", "90-day maximum", "slot windows: at most 90 days (a difference of two parameters)"),
    ("ST202", "must be in the future", "reschedule: depends on the clock"),
    ("ST202", "no such ", "a reference to an entity the tenant does not have (depends on the data)"),
    ("ST202", "not a phone number", "phone numbers: valid per numbering plan and the branch's country"),
    ("ST202", "/problems/invalid-policy", "a policy's keys depend on the policy type in the path"),
    ("ST202", "only staff keys are bound", "keys: staff_id only with role staff (oneOf on role not stated)"),
    ("ST202", "a staff key is bound", "keys: staff_id required with role staff (oneOf on role not stated)"),
    ("ST202", "subdivision", "a subdivision depends on the country (sent or stored)"),
    ("ST202", "give both", "dial window: both ends or neither (sent or stored)"),
    ("ST202", "valid decimal", "prices: pydantic's own decimal pattern is wider than what it parses"),
    ("ST202", "control character", "metadata: free-form JSON whose strings refuse control characters"),
    ("ST202", "unknown column", "CSV imports: the columns are not described by the schema"),
    (
        "ST202",
        "finite number",
        "prices: pydantic's decimal pattern admits NaN and Infinity, which it refuses",
    ),
    ("ST202", "is not a staff member of company", "keys: a staff member of the key's company (data)"),
    ("ST202", "unknown event type", "notification settings: event types are the database's catalogue"),
    ("ST202", "digits in total", "prices: at most 10 digits, 2 after the point (no JSON Schema keyword)"),
    ("ST202", "decimal places", "prices: at most 2 digits after the point"),
    ("ST202", '"field":"file"', "CSV imports: the file's columns and rows are not described by the schema"),
    (
        "ST202",
        "idempotency-key-reused",
        "a key reused with another body: 422 as the IETF Idempotency-Key draft says (depends on history)",
    ),
    ("ST301", "erased_at", "customers: erasure anonymises the row (GDPR Art. 17), the row stays readable"),
    ("ST201", "/codec/", "codec payloads: protobuf JSON parsing is laxer than the documented shape"),
]


@pytest.fixture(scope="module")
def live(pg_server: URL, template_database: str) -> Iterator[LiveApi]:
    with live_api(pg_server, template_database) as api:
        yield api


def _config(live: LiveApi) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "headers": live.headers,
            "workers": 1,  # CPython 3.11 can fail compiling an AST in two threads at once
            "continue-on-failure": True,
            "checks": {"enabled": True},
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True},
        }
    )


def _known_gap(code: str, label: str, answer: str) -> bool:
    return any(code == gap and (phrase in answer or phrase in label) for gap, phrase, _ in KNOWN_GAPS)


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
                if _known_gap(failure.code, event.recorder.label, answer):
                    continue
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
