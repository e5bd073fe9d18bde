"""Output and error handling shared by every command group: tables by default, JSON on request, the
API's own message and a non-zero exit code on failure."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from cli.api_client import ApiClient, ApiError
from config import get_settings

# --- output --------------------------------------------------------------------------------------

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain aligned table: readable in any terminal, grep-able, no extra dependency."""
    if not rows:
        return "(none)"
    cells = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in cells)) for i, (_, title) in enumerate(columns)]
    lines = ["  ".join(title.ljust(widths[i]) for i, (_, title) in enumerate(columns)).rstrip()]
    lines += ["  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip() for line in cells]
    return "\n".join(lines)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        return value[:16].replace("T", " ")  # timestamps to the minute
    return str(value)


def fields(record: dict[str, Any], keys: Sequence[str]) -> str:
    width = max(len(key) for key in keys)
    return "\n".join(f"{key.ljust(width)}  {cell(record.get(key))}" for key in keys)


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else human(data))


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def client() -> ApiClient:
    from cli.api_client import ApiClient

    settings = get_settings()
    if not settings.api_key:
        raise fail("set CALLBACKS_API_KEY to an API key (an admin creates one with `callbacks keys create`)")
    return ApiClient(settings.api_url, settings.api_key)


def call(action: Callable[[ApiClient], Any]) -> Any:
    """Run one API call; an error ends the command with the API's own message and a non-zero code."""

    with client() as api:
        try:
            return action(api)
        except ApiError as err:
            raise fail(err.describe()) from None
