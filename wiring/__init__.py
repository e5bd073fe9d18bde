"""The composition root: the one place that builds the engine's parts and hands them to the processes.

It sits on top of every other room (it imports them all, nothing but the processes import it):
`wiring.services` builds the shared parts, `wiring.web` the HTTP app (API + console), `worker.py` the worker.
"""

from wiring.services import Services, api_deps, connect, data_converter, open_services

__all__ = ["Services", "api_deps", "connect", "data_converter", "open_services"]
