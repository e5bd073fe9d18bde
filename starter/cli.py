"""`callbacks`: the operator commands (dev, worker, migrate) and the staff actions from a terminal."""

from __future__ import annotations

import asyncio
import logging

import typer

from models.settings import get_settings

app = typer.Typer(
    help="The callback engine: run it, migrate it, and work callbacks from the terminal.",
    no_args_is_help=True,
)


@app.command()
def dev() -> None:
    """Run the whole local stack (PostgreSQL, Temporal + UI, worker) until Ctrl-C."""
    from localstack.stack import run_dev

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_dev(get_settings()))


@app.command()
def worker() -> None:
    """Run a Temporal worker for the callback task queue."""
    from worker import main

    main()


@app.command()
def migrate(revision: str = typer.Argument("head", help="Alembic revision to upgrade to")) -> None:
    """Upgrade the database (DATABASE_URL, or the local stack's) to the latest schema."""
    from localstack.stack import resolve_database_url
    from store.migrate import upgrade

    url = asyncio.run(resolve_database_url(get_settings()))
    upgrade(url, revision)
    typer.echo(f"database upgraded to {revision}")


if __name__ == "__main__":
    app()
