"""The HTTP process: the API with the staff console mounted on it (`uvicorn --factory wiring.web:create_app`).

The API does not know the console (the console is built on the API's modules, so the arrow points the other
way); this is the one place where both become one ASGI app, for `callbacks api`, `make dev` and the tests.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app as create_api
from api.deps import Deps
from config import Settings, get_settings
from console import install as install_console
from wiring.services import open_api_deps


def create_app(settings: Settings | None = None, deps: Deps | None = None) -> FastAPI:
    settings = settings or (deps.settings if deps else get_settings())
    app = create_api(settings, deps, open_deps=open_api_deps)
    install_console(app, settings)
    return app
