"""The real API app for tests: our app, our database, a real Temporal server and an in-process worker.

Requests go through httpx's ASGI transport (the whole FastAPI stack, middleware and error handlers
included, without a socket); `serve_api()` also runs it on loopback for the CLI subprocess tests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.deps import Deps
from calcom.client import CalcomClient
from calcom.finder import SlotFinder, slot_cache
from config import Settings
from models.tables import CallbackRequest
from starter.client import CallbackClient
from store import api_keys
from store.db import transaction
from telemetry.asgi_server import serve_asgi
from tests.factories import Tenant
from wiring.web import create_app
from worker import build_worker

Sessions = async_sessionmaker[AsyncSession]
# Nothing listens here: tests that do not look up slots never reach Cal.com.
NO_CALCOM = "http://127.0.0.1:9"


@dataclass
class ApiEnv:
    app: FastAPI
    deps: Deps
    sessions: Sessions
    callbacks: CallbackClient
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def http(self, key: str | None = None, **headers: str) -> httpx.AsyncClient:
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
            base_url="http://api.test",
            headers=headers,
        )
        self.clients.append(client)
        return client

    async def key(
        self, role: str, tenant: Tenant | None = None, staff_id: uuid.UUID | None = None, name: str = "test"
    ) -> str:
        async with transaction(self.sessions) as session:
            created = await api_keys.create_key(
                session,
                name=name,
                role=role,
                company_id=tenant.company_id if tenant else None,
                staff_id=staff_id,
            )
        return created.secret

    async def callback_count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(CallbackRequest)) or 0)


@asynccontextmanager
async def running_api(
    client: Client,
    sessions: Sessions,
    task_queue: str,
    *,
    calcom_url: str = NO_CALCOM,
    finder_clock: Any = None,
    **overrides: Any,
) -> AsyncIterator[ApiEnv]:
    settings = Settings(task_queue=task_queue, calcom_base_url=calcom_url, **overrides)
    # One Cal.com client for the worker and the finder, closed here (a worker builds and never closes
    # its own when given none).
    async with (
        CalcomClient(calcom_url, "cal_test_0123456789", max_wait_seconds=1.0) as calcom,
        build_worker(client, settings, sessions, calcom=calcom),
    ):
        extra = {"clock": finder_clock} if finder_clock else {}
        finder = SlotFinder(calcom, _no_resolver, cache=slot_cache(45.0), **extra)
        callbacks = CallbackClient(client, task_queue, timeout=settings.api_temporal_timeout_seconds)
        deps = Deps.build(settings, sessions, callbacks, finder)
        env = ApiEnv(create_app(settings, deps), deps, sessions, callbacks)
        try:
            yield env
        finally:
            for http in env.clients:
                await http.aclose()


async def _no_resolver(service_id: int, company_id: int | None) -> None:
    """The API always hands the finder a resolved, tenant-checked calendar; it never asks this."""
    raise AssertionError("the API resolves services itself")


@asynccontextmanager
async def serve_api(app: FastAPI) -> AsyncIterator[str]:
    """Run the app on loopback (a free port) in this event loop; yields its base URL."""
    async with serve_asgi(app, "127.0.0.1", 0) as url:
        yield url


def callback_body(tenant: Tenant, **extra: Any) -> dict[str, Any]:
    """A valid POST /v1/callbacks body for the tenant's first branch."""
    return {
        "branch_id": tenant.branch_ids[0],
        "customer_name": "Erika",
        "phone_number": "+49 30 1234567",
        **extra,
    }


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """A problem+json answer of `status` and type `slug` that tells the caller when to try again."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{slug}"
    return problem
