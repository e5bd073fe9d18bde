"""What the callback workflow tests share: a worker on a given Temporal environment and row readers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from calcom.client import CalcomClient
from config import Settings
from models.callbacks import NewCallback, Priority
from models.tables import CallbackEscalation, CallbackEventRow, CallbackRequest
from starter.client import CallbackClient
from store.db import create_statement_engine
from tests.factories import Tenant
from worker import build_worker


@asynccontextmanager
async def running_worker(
    client: Client, sessions: async_sessionmaker[AsyncSession], task_queue: str, **overrides: Any
) -> AsyncIterator[CallbackClient]:
    settings = Settings(task_queue=task_queue, **overrides)
    # The production worker's one-statement writes and transaction-free reads (wiring/services.py).
    statements = create_statement_engine(sessions.kw["bind"].url, pool_size=4)
    try:
        async with (
            CalcomClient.from_settings(settings) as calcom,
            build_worker(client, settings, sessions, calcom=calcom, statements=statements),
        ):
            yield CallbackClient(client, task_queue)
    finally:
        await statements.dispose()


def new_callback(tenant: Tenant, **overrides: Any) -> NewCallback:
    values: dict[str, Any] = {
        "company_id": tenant.company_id,
        "branch_id": tenant.branch_ids[0],
        "service_id": tenant.service_ids[0],
        "customer_name": "Erika Mustermann",
        "phone_number": "+49 30 1234567",
        "priority": Priority.NORMAL,
    }
    values.update(overrides)
    return NewCallback(**values)


async def row(sessions: async_sessionmaker[AsyncSession], callback_id: uuid.UUID) -> CallbackRequest:
    async with sessions() as session:
        found = await session.get(CallbackRequest, callback_id)
        assert found is not None, "no callback_requests row"
        return found


async def escalation_rows(
    sessions: async_sessionmaker[AsyncSession], callback_id: uuid.UUID
) -> list[CallbackEscalation]:
    async with sessions() as session:
        result = await session.scalars(
            select(CallbackEscalation)
            .where(CallbackEscalation.callback_request_id == callback_id)
            .order_by(CallbackEscalation.sequence)
        )
        return list(result)


async def event_rows(
    sessions: async_sessionmaker[AsyncSession], callback_id: uuid.UUID
) -> list[CallbackEventRow]:
    async with sessions() as session:
        result = await session.scalars(
            select(CallbackEventRow)
            .where(CallbackEventRow.callback_request_id == callback_id)
            .order_by(CallbackEventRow.seq)
        )
        return list(result)
