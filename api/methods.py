"""405 with the exact `Allow` list of the resource, for the API and the console alike.

Starlette answers a method a route does not take with the `Allow` of the first route that matched the
path, so a path served by two routes (GET and POST declared apart) advertised only one of them; and a
request for a concrete path (`DELETE /v1/callbacks/summary`) was routed to a templated one
(`DELETE /v1/callbacks/{callback_id}`) and refused as a bad id. Here, as OpenAPI reads paths, a URL
belongs to its most specific template (concrete segments before parameters), and a method that template
does not take is answered 405 with every method it does take, before routing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import routing
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import PROBLEM_JSON


@dataclass(frozen=True)
class Resource:
    """One path template and every method its routes take (GET also answers HEAD)."""

    path: str  # the template: the request metrics label a 405 by it (`scope["route"].path`)
    methods: frozenset[str]
    regex: re.Pattern[str]
    specificity: tuple[int, int]  # (parameters, -literal characters): smaller is more specific


def _flat(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    """Every route with its full path: FastAPI keeps included routers as nodes of their own."""
    contexts = getattr(routing, "iter_route_contexts", None)
    return contexts(routes) if contexts is not None else routes


def resources(routes: Sequence[BaseRoute]) -> list[Resource]:
    by_template: dict[str, set[str]] = {}
    for route in _flat(routes):
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and methods:
            by_template.setdefault(path, set()).update(methods)
    found = []
    for template, methods in by_template.items():
        literal = "".join(part.split("}")[-1] for part in template.split("{"))
        regex = compile_path(template)[0]
        found.append(Resource(template, frozenset(methods), regex, (template.count("{"), -len(literal))))
    return sorted(found, key=lambda resource: resource.specificity)


class MethodNotAllowed:
    """ASGI middleware: answers 405 with `Allow` for a known path and a method its resource lacks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._resources: list[Resource] | None = None
        self._routes: int = -1

    def _known(self, scope: Scope) -> list[Resource]:
        routes = scope["app"].routes
        if self._resources is None or self._routes != len(routes):  # routes are added until startup
            self._resources = resources(routes)
            self._routes = len(routes)
        return self._resources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        for resource in self._known(scope):
            if not resource.regex.match(path):
                continue
            if method in resource.methods or (method == "HEAD" and "GET" in resource.methods):
                break
            scope["route"] = resource  # the request is counted under its template
            await self._refuse(scope, send, resource)
            return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, resource: Resource) -> None:
        allow = ", ".join(sorted(resource.methods))
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Method Not Allowed",
                "status": 405,
                "detail": f"{scope['method'][:16]} is not served here; allowed: {allow}",
                "instance": scope.get("path", ""),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 405,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"allow", allow.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
