"""`callbacks dev`: the whole engine on one machine, from pip wheels alone.

It starts what is not configured (embedded PostgreSQL under `.local/`, the Temporal dev server with its
Web UI), applies migrations, seeds the demo tenant once, runs the worker, and stops all of it on Ctrl-C.
A set `DATABASE_URL` / `TEMPORAL_ADDRESS` is used instead of the embedded part.

Payloads are encrypted as in production: without CALLBACKS_CODEC_KEYS(_FILE) a dev key is generated once
into `.local/codec-keys` (git-ignored; every `callbacks` command of this checkout finds it there), and the
UI reads payloads through the API's codec server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from fastapi import FastAPI
from sqlalchemy.engine import URL
from temporalio.worker import Worker

from api.metrics import api_metrics_app
from codec.keys import new_key_entry
from config import LOCAL_DATABASE, Settings
from devstack.calcom_fake import FakeCalcom, serve_fake
from devstack.demo import demo_admin_key, demo_calcom_webhook, seed_demo
from devstack.demo_callbacks import BANNER as DEMO_BANNER
from devstack.demo_callbacks import seed_demo_callbacks
from devstack.postgres import EmbeddedPostgres, ensure_database, postmaster_pid
from devstack.shutdown import (
    HTTP_DRAIN_SECONDS,
    PARTS_STOP_SECONDS,
    SERVERS_STOP_SECONDS,
    WORKER_GRACE_SECONDS,
    Stopper,
    StopRequested,
    bounded,
    kill_group,
    stop_process,
    stop_worker,
)
from devstack.sinks import FakeSmsGateway, MailSink, serve_smtp_sink
from devstack.temporal import register_search_attributes, start_dev_server, wait_for_server
from starter.schedules import ensure_schedules
from store.migrate import upgrade_async
from telemetry.asgi_server import serve_asgi
from telemetry.tracing import process_tracing
from wiring import Services, api_deps, open_services
from wiring.web import create_app
from worker import worker_for

log = logging.getLogger("callbacks.dev")

APP_DATABASE = LOCAL_DATABASE
DEV_SERVICE = "callbacks-dev"


@dataclass(frozen=True)
class DevProcesses:
    """The worker and the API of `make dev`: one process, one set of shared parts."""

    services: Services
    worker: Worker
    app: FastAPI


def ensure_codec_keys(settings: Settings) -> str:
    """The payload codec key of `make dev`: generated once into `.local/codec-keys` (owner-only), unless
    keys are configured. Returns the banner line."""
    if settings.codec_keys is not None or settings.codec_keys_file is not None:
        return "  codec keys       from CALLBACKS_CODEC_KEYS / CALLBACKS_CODEC_KEYS_FILE"
    path = settings.local_codec_keys()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = new_key_entry(f"dev{datetime.now(UTC):%Y%m%d}")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as keys:
            keys.write(f"# payload codec keys of `make dev` (first = current); dev only\n{entry}\n")
    return f"  codec keys       {path.resolve()} (dev only)"


def codec_endpoint(settings: Settings) -> str:
    """Where a browser on this machine reaches the API's codec server."""
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host
    return f"http://{host}:{settings.api_port}/codec"


@contextlib.asynccontextmanager
async def dev_processes(settings: Settings, database_url: str) -> AsyncIterator[DevProcesses]:
    """Worker and API built by the same composition root as the production processes (`worker.py`,
    `wiring.web`), so the dev stack cannot drift from production wiring."""
    tracing = process_tracing(settings, DEV_SERVICE)
    async with open_services(settings, database_url=database_url, tracing=tracing) as services:
        app = create_app(settings, api_deps(services), tracing=tracing)
        yield DevProcesses(services, worker_for(services), app)


async def run_dev(settings: Settings) -> None:
    local_dir = settings.local_dir
    local_dir.mkdir(exist_ok=True)
    stopper = Stopper()
    stopper.install()
    # Ctrl-C must not wait for activities for long (devstack/shutdown.py).
    grace = min(settings.worker_graceful_shutdown_seconds, WORKER_GRACE_SECONDS)
    settings = settings.model_copy(update={"worker_graceful_shutdown_seconds": grace})

    postgres: EmbeddedPostgres | None = None
    temporal_process: subprocess.Popen[bytes] | None = None
    services = contextlib.AsyncExitStack()
    front = contextlib.AsyncExitStack()  # what takes requests: the API and its metrics
    worker: tuple[Worker, asyncio.Task[None]] | None = None
    keys_line = ensure_codec_keys(settings)
    codec_url = codec_endpoint(settings)
    try:
        if settings.database_url:
            database_url = settings.database_url
        else:
            postgres = EmbeddedPostgres((local_dir / "pgdata").resolve())
            stopper.on_hard_stop(lambda: _quit_postgres(postgres))
            url: URL = await ensure_database(postgres.url, APP_DATABASE)
            database_url = url.render_as_string(hide_password=False)
        stopper.check()
        await upgrade_async(database_url)
        stopper.check()

        address = settings.temporal_address or f"127.0.0.1:{settings.dev_temporal_port}"
        if not settings.temporal_address:
            temporal_process = start_dev_server(
                port=settings.dev_temporal_port,
                ui_port=settings.dev_temporal_ui_port or None,
                db_filename=(local_dir / "temporal.db").resolve(),
                log=local_dir / "temporal.log",
                ui_codec_endpoint=codec_url,
            )
            stopper.on_hard_stop(partial(kill_group, temporal_process))
        await wait_for_server(address)
        stopper.check()
        settings = settings.model_copy(update={"temporal_address": address})

        fake: FakeCalcom | None = None
        if not settings.calcom_base_url:  # the fake Cal.com, seeded with the demo event types
            fake = FakeCalcom()
            await services.enter_async_context(serve_fake(fake, port=settings.calcom_fake_port))
            if not settings.calcom_api_key:  # the fake's bookings list (the sync schedule) wants a key
                settings = settings.model_copy(update={"calcom_api_key": "cal_dev_fake_key"})
        notification_lines = await _notification_sinks(settings, services)

        processes = await services.enter_async_context(dev_processes(settings, database_url))
        engine = processes.services
        await register_search_attributes(engine.temporal, settings.temporal_namespace)
        await ensure_schedules(engine.temporal, settings)  # the periodic jobs, as a production worker does
        seeded = await seed_demo(engine.sessions)
        stopper.check()
        metrics = api_metrics_app(engine.sessions, engine.sdk.url if engine.sdk else None)
        worker = (processes.worker, asyncio.create_task(processes.worker.run()))
        api_url = await front.enter_async_context(
            serve_asgi(processes.app, settings.api_host, settings.api_port, drain_seconds=HTTP_DRAIN_SECONDS)
        )
        metrics_url = await front.enter_async_context(
            serve_asgi(
                metrics,
                settings.api_metrics_host,
                settings.api_metrics_port,
                drain_seconds=HTTP_DRAIN_SECONDS,
            )
        )
        admin_key = await demo_admin_key(engine.sessions)
        company_id, secret = await demo_calcom_webhook(engine.sessions)
        webhook_url = f"{api_url}/v1/calcom/webhooks/{company_id}"
        if fake is not None:  # bookings made through the fake reach the API as signed webhooks
            fake.subscribe(webhook_url, secret)
        demo = await seed_demo_callbacks(engine.sessions, engine.temporal, settings)
        print(_banner(settings, database_url, address, seeded), flush=True)
        print(f"  Cal.com          {settings.calcom_url()}{'' if settings.calcom_base_url else ' (fake)'}")
        print(f"  Cal.com webhooks {webhook_url} (demo company's secret)", flush=True)
        if demo.any:
            print(f"  demo callbacks   {len(demo.created)} in every state, created now {DEMO_BANNER}")
        elif not settings.demo_callbacks:
            print("  demo callbacks   off (CALLBACKS_DEMO_CALLBACKS=false)")
        print(f"  API              {api_url}  (docs: {api_url}/docs, metrics: {metrics_url}/metrics)")
        print(keys_line)
        print(_codec_help(codec_url, api_url), flush=True)
        print(
            "\n  a new admin key of the demo company (shown once; paste it into your shell):\n"
            f"    export CALLBACKS_API_URL={api_url}\n"
            f"    export CALLBACKS_API_KEY={admin_key}",
            flush=True,
        )
        print("\n".join(notification_lines), flush=True)
        # Until Ctrl-C (or a worker that failed for good).
        await asyncio.wait(
            {asyncio.ensure_future(stopper.requested.wait()), worker[1]}, return_when=asyncio.FIRST_COMPLETED
        )
    except StopRequested:
        pass
    finally:
        print("\nstopping…", flush=True)
        # 1. No new work: the worker stops polling (its activities get a short grace), the API closes.
        await asyncio.gather(
            stop_worker(*worker) if worker else asyncio.sleep(0),
            bounded("the API", HTTP_DRAIN_SECONDS + 0.5, front.aclose()),
        )
        # 2. The shared parts (database pool, clients, fakes, sinks).
        await bounded("the engine's parts", PARTS_STOP_SECONDS, services.aclose())
        # 3. The servers, side by side.
        await asyncio.gather(
            stop_process(temporal_process, SERVERS_STOP_SECONDS) if temporal_process else asyncio.sleep(0),
            asyncio.to_thread(postgres.stop, SERVERS_STOP_SECONDS) if postgres else asyncio.sleep(0),
        )
        stopper.finished()


def _quit_postgres(postgres: EmbeddedPostgres) -> None:
    """The watchdog's stop of PostgreSQL: an immediate shutdown (SIGQUIT), which still removes its pid
    file; quick enough for the watchdog, and recovered from at the next start."""
    pid = postmaster_pid(postgres.pgdata)
    if pid is not None:
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 0.8
        while postmaster_pid(postgres.pgdata) is not None and time.monotonic() < deadline:
            time.sleep(0.02)


async def _notification_sinks(settings: Settings, services: contextlib.AsyncExitStack) -> list[str]:
    """Start the local SMTP sink and fake SMS gateway where no real ones are configured; returns the
    banner lines that say where notifications end up."""
    lines = []
    if settings.smtp_url:
        lines.append(f"  SMTP             {settings.smtp_url}")
    else:
        folder = (settings.local_dir / "mail").resolve()
        url = await services.enter_async_context(
            serve_smtp_sink(MailSink(folder), port=settings.notify_smtp_sink_port)
        )
        lines.append(f"  SMTP sink        {url}: mails are written to {folder}/*.eml")
    if settings.notify_sms_gateway_url:
        lines.append(f"  SMS gateway      {settings.notify_sms_gateway_url}")
    else:
        log_file = (settings.local_dir / "sms.jsonl").resolve()
        base = await services.enter_async_context(
            serve_asgi(FakeSmsGateway(log_file).app, port=settings.notify_sms_fake_port)
        )
        lines.append(f"  SMS gateway      {base}/messages (fake): texts in {log_file}, GET lists them")
    return lines


def _codec_help(codec_url: str, api_url: str) -> str:
    return "\n".join(
        [
            f"  codec server     {codec_url}  (Temporal keeps only ciphertext; this decodes it)",
            "    Temporal UI: sign in to the console first "
            f"({api_url}/console/login, a staff or admin key), then in the UI's codec settings",
            f"    (Data Encoder) use your browser's setting, endpoint {codec_url}, and tick",
            '    "Include cross-origin credentials".',
            f"    CLI: temporal workflow show -w <id> --codec-endpoint {codec_url} "
            '--codec-auth "Bearer $CALLBACKS_API_KEY"',
        ]
    )


def _banner(settings: Settings, database_url: str, temporal_address: str, seeded: bool) -> str:
    ours = temporal_address.endswith(f":{settings.dev_temporal_port}") and settings.dev_temporal_ui_port
    ui = f"http://127.0.0.1:{settings.dev_temporal_ui_port}" if ours else "-"
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
