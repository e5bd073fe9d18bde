"""The HTTP API (FastAPI) of the callback engine; `api.app.create_app` builds it.

Nothing is imported here, so the CLI can read the action bodies (api/action_bodies.py) without loading the
whole application."""
