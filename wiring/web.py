"""The HTTP process: the API with the staff console mounted on it (`uvicorn --factory wiring.web:create_app`).

The API does not know the console (the console is built on the API's modules, so the arrow points the other
way); this is the one place where both become one ASGI app, for `callbacks api`, `make dev` and the tests.
It is also where the API process's tracing is set up (telemetry/tracing.py): the app, and through
`open_api_deps` its database engine and Temporal client.
"""

from __future__ import annotations

import functools

from fastapi import FastAPI

from api.app import create_app as create_api
from api.deps import Deps
from config import Settings, get_settings
from console import install as install_console
from telemetry.tracing import Tracing, process_tracing
from wiring.services import open_api_deps

API_SERVICE = "callbacks-api"


def create_app(
    settings: Settings | None = None, deps: Deps | None = None, tracing: Tracing | None = None
) -> FastAPI:
    """`tracing`: None = this process's (on when OTEL_EXPORTER_OTLP_ENDPOINT is set). Given `deps` are
    traced by whoever built them (the composition root's `open_services`)."""
    settings = settings or (deps.settings if deps else get_settings())
    tracing = tracing if tracing is not None else process_tracing(settings, API_SERVICE)
    app = create_api(settings, deps, open_deps=functools.partial(open_api_deps, tracing=tracing))
    install_console(app, settings)
    tracing.instrument_app(app)
    return app
