"""`callbacks dev`: the whole engine on one machine, from pip wheels alone.

It starts what is not configured (embedded PostgreSQL under `.local/`, the Temporal dev server with its
Web UI), applies migrations, seeds the demo tenant once, runs the worker, and stops all of it on Ctrl-C.
A set `DATABASE_URL` / `TEMPORAL_ADDRESS` is used instead of the embedded part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from localstack.postgres import EmbeddedPostgres, ensure_database
from localstack.temporal import register_search_attributes, start_dev_server, wait_for_server
from models.settings import Settings

log = logging.getLogger("callbacks.dev")

LOCAL_DIR = Path(os.environ.get("CALLBACKS_LOCAL_DIR", ".local"))
APP_DATABASE = "callbacks"
TEMPORAL_PORT = 7233
TEMPORAL_UI_PORT = 8233


def local_pgdata() -> Path:
    return (LOCAL_DIR / "pgdata").resolve()


async def resolve_database_url(settings: Settings) -> str:
    """The configured DATABASE_URL, or the app database on the embedded server `make dev` runs."""
    if settings.database_url:
        return settings.database_url
    pgdata = local_pgdata()
    if not (pgdata / "postmaster.pid").exists():
        raise SystemExit("DATABASE_URL is not set and the local stack is not running: start `make dev` first")
    server = EmbeddedPostgres(pgdata)
    url = await ensure_database(server.url, APP_DATABASE)
    return url.render_as_string(hide_password=False)


async def run_dev(settings: Settings) -> None:
    from localstack.demo import seed_demo
    from store.db import create_engine, session_factory
    from store.migrate import upgrade_async
    from worker import build_worker

    LOCAL_DIR.mkdir(exist_ok=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    postgres: EmbeddedPostgres | None = None
    temporal_process = None
    services = contextlib.AsyncExitStack()
    try:
        if settings.database_url:
            database_url = settings.database_url
        else:
            postgres = EmbeddedPostgres(local_pgdata())
            url: URL = await ensure_database(postgres.url, APP_DATABASE)
            database_url = url.render_as_string(hide_password=False)
        await upgrade_async(database_url)

        address = settings.temporal_address or f"127.0.0.1:{TEMPORAL_PORT}"
        if not settings.temporal_address:
            temporal_process = start_dev_server(
                port=TEMPORAL_PORT,
                ui_port=TEMPORAL_UI_PORT,
                db_filename=(LOCAL_DIR / "temporal.db").resolve(),
                log=LOCAL_DIR / "temporal.log",
            )
        client = await wait_for_server(address)
        await register_search_attributes(client, settings.temporal_namespace)
        from starter.schedules import ensure_schedules

        await ensure_schedules(client, settings)  # the periodic jobs, as a production worker creates them

        calcom_url = settings.calcom_url()
        if not settings.calcom_base_url:  # the fake Cal.com, seeded with the demo event types
            from calcom.fake import FakeCalcom, serve_fake

            await services.enter_async_context(serve_fake(FakeCalcom(), port=settings.calcom_fake_port))
        from calcom.client import CalcomClient

        calcom = await services.enter_async_context(CalcomClient.from_settings(settings))
        notification_lines = await _notification_sinks(settings, services)

        engine = create_engine(database_url)
        sessions = session_factory(engine)
        seeded = await seed_demo(sessions)
        worker = build_worker(client, settings, sessions, calcom=calcom)
        async with worker, serve_api(settings, sessions, client, calcom) as (api_url, admin_key):
            print(_banner(database_url, address, seeded), flush=True)
            print(
                f"  Cal.com          {calcom_url}{'' if settings.calcom_base_url else ' (fake)'}", flush=True
            )
            print(f"  API              {api_url}  (docs: {api_url}/docs)", flush=True)
            print(
                "\n  a new admin key of the demo company (shown once; paste it into your shell):\n"
                f"    export CALLBACKS_API_URL={api_url}\n"
                f"    export CALLBACKS_API_KEY={admin_key}",
                flush=True,
            )
            print("\n".join(notification_lines), flush=True)
            await stopping.wait()
            print("\nstopping…", flush=True)
        await engine.dispose()
    finally:
        await services.aclose()
        if temporal_process is not None:
            temporal_process.send_signal(signal.SIGTERM)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(temporal_process.wait, 20)
        if postgres is not None:
            postgres.stop()


async def _notification_sinks(settings: Settings, services: contextlib.AsyncExitStack) -> list[str]:
    """Start the local SMTP sink and fake SMS gateway where no real ones are configured; returns the
    banner lines that say where notifications end up."""
    from localstack.http import serve_asgi
    from localstack.sinks import FakeSmsGateway, MailSink, serve_smtp_sink

    lines = []
    if settings.smtp_url:
        lines.append(f"  SMTP             {settings.smtp_url}")
    else:
        folder = (LOCAL_DIR / "mail").resolve()
        url = await services.enter_async_context(
            serve_smtp_sink(MailSink(folder), port=settings.notify_smtp_sink_port)
        )
        lines.append(f"  SMTP sink        {url}: mails are written to {folder}/*.eml")
    if settings.notify_sms_gateway_url:
        lines.append(f"  SMS gateway      {settings.notify_sms_gateway_url}")
    else:
        log_file = (LOCAL_DIR / "sms.jsonl").resolve()
        base = await services.enter_async_context(
            serve_asgi(FakeSmsGateway(log_file).app, port=settings.notify_sms_fake_port)
        )
        lines.append(f"  SMS gateway      {base}/messages (fake): texts in {log_file}, GET lists them")
    return lines


@contextlib.asynccontextmanager
async def serve_api(
    settings: Settings, sessions: Any, client: Any, calcom: Any
) -> AsyncIterator[tuple[str, str]]:
    """The HTTP API on 127.0.0.1 in this event loop, sharing the stack's database, Temporal and Cal.com
    clients; yields its URL and a freshly created admin key of the demo company (keys are stored hashed,
    so an old one cannot be shown again)."""
    from activities.calcom import store_resolver
    from calcom.finder import SlotFinder
    from localstack.demo import demo_admin_key
    from localstack.http import serve_asgi
    from starter.api import create_app
    from starter.api.deps import Deps
    from starter.client import CallbackClient

    finder = SlotFinder(calcom, store_resolver(sessions), chunk_days=settings.calcom_search_chunk_days)
    deps = Deps.build(settings, sessions, CallbackClient(client, settings.task_queue), finder)
    async with serve_asgi(create_app(settings, deps), settings.api_host, settings.api_port) as url:
        yield url, await demo_admin_key(sessions)


def _banner(database_url: str, temporal_address: str, seeded: bool) -> str:
    ui = f"http://127.0.0.1:{TEMPORAL_UI_PORT}" if temporal_address.endswith(f":{TEMPORAL_PORT}") else "-"
    return "\n".join(
        [
            "callback engine is running (Ctrl-C stops everything it started)",
            f"  Temporal UI      {ui}",
            f"  Temporal server  {temporal_address}",
            f"  PostgreSQL       {database_url}",
            f"  demo tenant      {'seeded now' if seeded else 'already there'}",
            "  worker           task queue 'callbacks'",
        ]
    )
