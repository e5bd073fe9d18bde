"""`callbacks companies …`: the tenants (create and rename: super_admin keys; settings: their admins)."""

from __future__ import annotations

import typer

from api.directory_bodies import CompanyCreate, CompanyUpdate
from cli.directory import register
from cli.output import JsonOption, call, emit, fields

companies_app = typer.Typer(help="Companies, the tenants (through the API).", no_args_is_help=True)
KEYS = [
    "id",
    "name",
    "time_zone",
    "currency",
    "webhook_url",
    "webhook_secret_set",
    "webhook_secret_previous_until",
    "calcom_webhook_secret_set",
    "dial_window_start",
    "dial_window_end",
    "created_at",
    "webhook_secret",
]
register(
    companies_app,
    path="/v1/companies",
    thing="companies",
    create=CompanyCreate,
    update=CompanyUpdate,
    columns=[
        ("id", "ID"),
        ("name", "NAME"),
        ("time_zone", "ZONE"),
        ("currency", "CUR"),
        ("webhook_url", "WEBHOOK"),
    ],
    keys=KEYS,
)


@companies_app.command("rotate-webhook-secret")
def companies_rotate_webhook_secret(company_id: int, as_json: JsonOption = False) -> None:
    """A new webhook secret, printed once; the previous one stays known for the grace period."""
    rotated = call(lambda client: client.request("POST", f"/v1/companies/{company_id}/webhook-secret"))
    emit(rotated, as_json, lambda d: fields(d, ["id", "webhook_secret", "webhook_secret_previous_until"]))
