"""The bench's tenant, its callback requests, and a client that creates them the API's way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.opening import CallbackOpener
from activities.preparation import CallbackPreparer
from activities.step_writer import StepWriter
from bench.harness import seed_tenant
from config import Settings
from models.callbacks import CreatedCallback, NewCallback, Priority
from starter.client import CallbackClient
from starter.opening import open_callback
from store.db import create_engine, session_factory, transaction
from store.policies import PolicyResolver

# (company, branch, service)
BenchIds = tuple[int, int, int]


async def seed(database_url: str) -> BenchIds:
    engine = create_engine(database_url, pool_size=2)
    try:
        async with transaction(session_factory(engine)) as session:
            tenant = await seed_tenant(session)
        return tenant.company_id, tenant.branch_id, tenant.service_id
    finally:
        await engine.dispose()


def request(tenant: BenchIds, n: int, priority: Priority = Priority.NORMAL) -> NewCallback:
    company_id, branch_id, service_id = tenant
    return NewCallback(
        company_id=company_id,
        branch_id=branch_id,
        service_id=service_id,
        customer_name=f"Customer {n}",
        phone_number="+49 30 1234567",
        priority=priority,
    )


@dataclass
class EdgeClient:
    """Creates callbacks as POST /v1/callbacks does: prepared, the first step written, then started from it
    (starter/opening.py)."""

    client: CallbackClient
    preparer: CallbackPreparer
    opener: CallbackOpener

    async def create(self, new: NewCallback, idempotency_key: str | None = None) -> CreatedCallback:
        prepared = await self.preparer.prepare(new, at=datetime.now(UTC))
        return await open_callback(self.opener, self.client, new, prepared, idempotency_key)


def edge_client(
    client: CallbackClient,
    sessions: async_sessionmaker[AsyncSession],
    policies: PolicyResolver,
) -> EdgeClient:
    """What the API runs for each create (api/deps.py), with the engine's defaults."""
    preparer = CallbackPreparer.from_settings(sessions, policies, Settings())
    return EdgeClient(client, preparer, CallbackOpener(preparer, StepWriter(sessions)))
