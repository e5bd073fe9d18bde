"""`callbacks import staff|services|customers FILE.csv [--dry-run]`: bulk import through the API.

Rows are matched by `external_id`: running the same file again changes nothing. The report lists each
refused row with its line and the reason; the command exits 1 when any row was refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.output import JsonOption, call, emit, fail, table

import_app = typer.Typer(
    help="Import staff, services or customers from CSV (through the API).", no_args_is_help=True
)

FileArgument = Annotated[Path, typer.Argument(help="a CSV file, UTF-8, with a header line", exists=False)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="check and report, write nothing")]


def _report(data: dict[str, Any]) -> str:
    what = "would be" if data["dry_run"] else "were"
    lines = [
        f"{data['rows']} rows: {data['valid']} valid, {len(data['refused'])} refused",
        f"{data['created']} {what} created, {data['updated']} updated, {data['unchanged']} unchanged",
    ]
    if data.get("deactivated"):
        lines.append(f"{data['deactivated']} staff {what} deactivated")
    if data["refused"]:
        lines += [
            "",
            table(data["refused"], [("row", "LINE"), ("external_id", "EXTERNAL ID"), ("reason", "REASON")]),
        ]
    return "\n".join(lines)


def _run(kind: str, file: Path, dry_run: bool, company_id: int | None, as_json: bool) -> None:
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    params = {"dry_run": str(dry_run).lower(), "company_id": company_id}
    report = call(
        lambda client: client.request(
            "POST", f"/v1/import/{kind}", params=params, content=content, headers={"Content-Type": "text/csv"}
        )
    )
    emit(report, as_json, _report)
    if report["refused"]:
        raise typer.Exit(1)


def _command(kind: str) -> Any:
    def command(
        file: FileArgument,
        dry_run: DryRun = False,
        company_id: Annotated[int | None, typer.Option(help="super_admin keys only")] = None,
        as_json: JsonOption = False,
    ) -> None:
        _run(kind, file, dry_run, company_id, as_json)

    command.__name__ = f"import_{kind}"
    command.__doc__ = f"Import {kind} from a CSV file (see docs/api.md for the columns)."
    return command


for _kind in ("staff", "services", "customers"):
    import_app.command(_kind)(_command(_kind))
