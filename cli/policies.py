"""`callbacks policies …` and `callbacks slots`: policies and Cal.com slots through the API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cli.output import JsonOption, call, emit, fail, table

policies_app = typer.Typer(help="Appointment and callback policies (through the API).", no_args_is_help=True)


def _show_policy(data: dict[str, Any]) -> str:
    sources = data.get("sources")
    rows = [
        {
            "key": key,
            "value": json.dumps(value),
            "from": f"{sources[key]['level']} {sources[key]['entity_id']}" if sources else None,
        }
        for key, value in data["config"].items()
    ]
    columns = [("key", "KEY"), ("value", "VALUE")] + ([("from", "FROM")] if sources else [])
    return table(rows, columns)


@policies_app.command("set")
def policies_set(
    scope: Annotated[str, typer.Argument(help="company, branch, service or staff")],
    scope_id: str,
    policy_type: Annotated[str, typer.Argument(help="cancellation, reschedule or callback")],
    config: Annotated[
        str, typer.Argument(help='the config as JSON, e.g. \'{"hours_before": 24, "fee": 10}\'')
    ],
    as_json: JsonOption = False,
) -> None:
    """Create or replace one entity's policy."""
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        raise fail(f"the config is not JSON: {exc}") from None
    stored = call(lambda client: client.put_policy(scope, scope_id, policy_type, parsed))
    emit(stored, as_json, _show_policy)


@policies_app.command("show")
def policies_show(scope: str, scope_id: str, policy_type: str, as_json: JsonOption = False) -> None:
    """One entity's own policy (without what it inherits)."""
    found = call(lambda client: client.get_policy(scope, scope_id, policy_type))
    emit(found, as_json, _show_policy)


@policies_app.command("effective")
def policies_effective(
    policy_type: Annotated[str, typer.Argument(help="cancellation, reschedule or callback")],
    branch_id: Annotated[int | None, typer.Option()] = None,
    service_id: Annotated[int | None, typer.Option()] = None,
    staff_id: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """The merged policy for these entities, with the level that supplied each key."""
    found = call(
        lambda client: client.effective_policy(
            policy_type, branch_id=branch_id, service_id=service_id, staff_id=staff_id
        )
    )
    emit(found, as_json, _show_policy)


def slots(
    service_id: int,
    start: Annotated[str | None, typer.Option(help="window start, ISO 8601 with offset")] = None,
    end: Annotated[str | None, typer.Option(help="window end, ISO 8601 with offset")] = None,
    after: Annotated[
        str | None, typer.Option(help="without a window: the next slots from then (default now)")
    ] = None,
    limit: Annotated[int, typer.Option(help="without a window: how many")] = 5,
    time_zone: Annotated[str | None, typer.Option(help="IANA zone of the answer")] = None,
    as_json: JsonOption = False,
) -> None:
    """Free Cal.com slots of a service: in a window (--start/--end) or the next ones."""
    if (start is None) != (end is None):
        raise fail("give both --start and --end, or neither")
    if start is not None:
        found = call(lambda client: client.slots(service_id, start=start, end=end, time_zone=time_zone))
    else:
        found = call(
            lambda client: client.next_slots(service_id, after=after, limit=limit, time_zone=time_zone)
        )
    emit(
        found,
        as_json,
        lambda d: table(d["slots"], [("start", "START"), ("end", "END")]) + f"\n({d['time_zone']})",
    )


# --- notifications (over HTTP, admin keys) -------------------------------------------------------
