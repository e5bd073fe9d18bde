"""`callbacks`: the operator commands (dev, worker, api, migrate, keys, schedules) and, from a terminal,
the staff actions, policies, notification settings, appointment changes and the tenant directory
(companies, branches, services, staff, customers, CSV import).

Operator commands work on the local machine (database, processes). Everything else talks HTTP to a running
API (`CALLBACKS_API_URL`, default http://127.0.0.1:8000) with the key in `CALLBACKS_API_KEY`, so a terminal
has exactly the rights of its key, and the API stays the one place that checks them. One module per command
group; this one only assembles them.
"""

from __future__ import annotations

import typer

from cli import (
    appointments,
    branches,
    callbacks,
    companies,
    customers,
    dev,
    imports,
    keys,
    notifications,
    operator,
    policies,
    services,
    staff,
)

app = typer.Typer(
    help="The callback engine: run it, migrate it, and work callbacks from the terminal.",
    no_args_is_help=True,
)
app.command()(dev.dev)
app.registered_commands.extend(operator.app.registered_commands)
app.add_typer(operator.schedules_app, name="schedules")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(callbacks.callbacks_app, name="callbacks")
app.add_typer(policies.policies_app, name="policies")
app.command()(policies.slots)
app.add_typer(notifications.notifications_app, name="notifications")
app.add_typer(appointments.appointments_app, name="appointments")
app.add_typer(companies.companies_app, name="companies")
app.add_typer(branches.branches_app, name="branches")
app.add_typer(services.services_app, name="services")
app.add_typer(staff.staff_app, name="staff")
app.add_typer(customers.customers_app, name="customers")
app.add_typer(imports.import_app, name="import")


if __name__ == "__main__":
    app()
