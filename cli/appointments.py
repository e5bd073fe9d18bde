"""`callbacks appointments …`: cancel or reschedule an appointment under its policies."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.output import JsonOption, call, cell, emit

appointments_app = typer.Typer(
    help="Cancel and reschedule appointments (through the API).", no_args_is_help=True
)

IdempotencyOption = Annotated[
    str | None,
    typer.Option(help="the change's request id: resending the same key never changes anything twice"),
]


def _show_change(outcome: dict[str, Any]) -> str:
    policy = outcome.get("policy") or {}
    fee = f"{outcome.get('fee_charged')} {policy.get('currency', '')}".strip()
    verb = "cancelled" if outcome["change"] == "cancel" else "rescheduled"
    text = f"appointment {outcome['appointment_id']} {verb}, fee {fee}"
    if outcome["change"] == "reschedule":
        text += f", now {cell(outcome.get('starts_at'))}–{cell(outcome.get('ends_at'))[11:]}"
    return text + f"  (request {outcome['request_id']})"


@appointments_app.command("cancel")
def appointments_cancel(
    appointment_id: int,
    reason: Annotated[str | None, typer.Option()] = None,
    idempotency_key: IdempotencyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel under the appointment's policy; a denial exits non-zero with the reason."""
    body = {"reason": reason} if reason else {}
    outcome = call(lambda client: client.change_appointment(appointment_id, "cancel", body, idempotency_key))
    emit(outcome, as_json, _show_change)


@appointments_app.command("reschedule")
def appointments_reschedule(
    appointment_id: int,
    to: Annotated[str, typer.Option("--to", help="the new start, ISO 8601 with offset")],
    reason: Annotated[str | None, typer.Option()] = None,
    idempotency_key: IdempotencyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an appointment to a new start (it keeps its length)."""
    body = {"new_start": to, **({"reason": reason} if reason else {})}
    outcome = call(
        lambda client: client.change_appointment(appointment_id, "reschedule", body, idempotency_key)
    )
    emit(outcome, as_json, _show_change)
