"""Operator commands that run the engine's processes on this machine: worker, api, migrate, schedules.

`dev` lives in cli/dev.py: it is the one door into the dev stack."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from config import database_url_of, get_settings

app = typer.Typer()


@app.command()
def worker() -> None:
    """Run a Temporal worker for the callback task queue."""
    from worker import main

    main()


@app.command()
def migrate(revision: str = typer.Argument("head", help="Alembic revision to upgrade to")) -> None:
    """Upgrade the database (DATABASE_URL, or the local stack's) to the latest schema."""
    from store.migrate import upgrade

    url = database_url_of(get_settings())
    upgrade(url, revision)
    typer.echo(f"database upgraded to {revision}")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="default: CALLBACKS_API_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="default: CALLBACKS_API_PORT or 8000")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from telemetry.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "wiring.web:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        proxy_headers=True,
        # Our middleware writes one JSON line per request; keep uvicorn from installing its own format.
        log_config=None,
        access_log=False,
    )


# --- schedules (operator: talks to Temporal directly) ----------------------------------------------

schedules_app = typer.Typer(help="The Temporal Schedules of the periodic jobs.", no_args_is_help=True)


@schedules_app.command("sync")
def schedules_sync() -> None:
    """Create the schedules, or bring them in line with the current settings (workers do this at start)."""
    from starter.schedules import ensure_schedules
    from wiring import connect

    async def run() -> None:
        client = await connect(get_settings())
        for item, created in await ensure_schedules(client, get_settings()):
            typer.echo(f"{item.schedule_id}: {'created' if created else 'updated'} ({item.description})")

    asyncio.run(run())


@schedules_app.command("trigger")
def schedules_trigger(schedule_id: str) -> None:
    """Run a schedule's job now (e.g. the reconciliation sweep after an import)."""
    from wiring import connect

    async def run() -> None:
        client = await connect(get_settings())
        await client.get_schedule_handle(schedule_id).trigger()
        typer.echo(f"{schedule_id}: triggered")

    asyncio.run(run())
