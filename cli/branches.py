"""`callbacks branches …`: a company's branches, with their calendars (admin keys write)."""

from __future__ import annotations

import typer

from api.directory_bodies import BranchCreate, BranchUpdate
from cli.directory import register

branches_app = typer.Typer(
    help="Branches: time zone, holidays, opening hours, closures (through the API).", no_args_is_help=True
)
register(
    branches_app,
    path="/v1/branches",
    thing="branches",
    create=BranchCreate,
    update=BranchUpdate,
    columns=[
        ("id", "ID"),
        ("name", "NAME"),
        ("time_zone", "ZONE"),
        ("country", "COUNTRY"),
        ("subdivision", "SUBDIV"),
        ("phone_number", "PHONE"),
    ],
    keys=[
        "id",
        "company_id",
        "name",
        "time_zone",
        "country",
        "subdivision",
        "opening_hours",
        "closures",
        "quiet_hours_start",
        "quiet_hours_end",
        "dial_window_start",
        "dial_window_end",
        "phone_number",
        "email",
    ],
)
