"""`callbacks services …`: what a company offers (admin keys write; `callbacks slots` finds free times)."""

from __future__ import annotations

import typer

from api.directory_bodies import ServiceCreate, ServiceUpdate
from cli.directory import register

services_app = typer.Typer(
    help="Services: duration, price, Cal.com event type (through the API).", no_args_is_help=True
)
register(
    services_app,
    path="/v1/services",
    thing="services",
    create=ServiceCreate,
    update=ServiceUpdate,
    columns=[
        ("id", "ID"),
        ("name", "NAME"),
        ("branch_id", "BRANCH"),
        ("duration_minutes", "MIN"),
        ("price", "PRICE"),
        ("calcom_event_type_id", "CAL.COM"),
        ("is_active", "ACTIVE"),
        ("external_id", "EXTERNAL ID"),
    ],
    keys=[
        "id",
        "company_id",
        "name",
        "branch_id",
        "duration_minutes",
        "price",
        "calcom_event_type_id",
        "is_active",
        "external_id",
    ],
    filters=("branch_id", "is_active"),
)
