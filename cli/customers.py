"""`callbacks customers …`: the people who ask to be called back (admin keys write)."""

from __future__ import annotations

import typer

from api.directory_bodies import CustomerCreate, CustomerUpdate
from cli.directory import register

customers_app = typer.Typer(help="Customers (through the API).", no_args_is_help=True)
register(
    customers_app,
    path="/v1/customers",
    thing="customers",
    create=CustomerCreate,
    update=CustomerUpdate,
    columns=[
        ("id", "ID"),
        ("name", "NAME"),
        ("phone_number", "PHONE"),
        ("email", "EMAIL"),
        ("locale", "LANG"),
        ("external_id", "EXTERNAL ID"),
    ],
    keys=[
        "id",
        "company_id",
        "name",
        "phone_number",
        "email",
        "locale",
        "time_zone",
        "external_id",
        "erased_at",
    ],
)
