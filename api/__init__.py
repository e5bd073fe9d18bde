"""The HTTP API (FastAPI) of the callback engine; `create_app` builds it."""

from api.app import create_app

__all__ = ["create_app"]
