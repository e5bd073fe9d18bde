"""The bench's tenant and its callback requests."""

from __future__ import annotations

from bench.harness import seed_tenant
from models.callbacks import NewCallback, Priority
from store.db import create_engine, session_factory, transaction

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
