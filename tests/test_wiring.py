"""`make dev` and the production processes build the same objects: one composition root (wiring/).

The drift this guards against was real: under `make dev` the API's slot finder had no cache and the worker
had no policy-change listener, while the production processes had both.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import URL
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.deps import Deps
from calcom.budget import budget_key
from calcom.finder import SlotFinder
from config import Settings
from devstack.stack import dev_processes
from store.calcom_budget import PgRateBudget
from store.notification_settings import NotificationSettings
from store.policies import PolicyResolver
from tests.conftest import render
from wiring import Services, open_services
from wiring.services import open_api_deps
from worker import worker_for

pytestmark = pytest.mark.devserver


def _held_by_activities(worker: Worker, kind: type) -> list[Any]:
    """Every `kind` object the worker's activity instances hold (the parts they were built with)."""
    owners = {id(fn.__self__): fn.__self__ for fn in worker.config()["activities"] if hasattr(fn, "__self__")}
    return [value for owner in owners.values() for value in vars(owner).values() if isinstance(value, kind)]


def _assert_wired(services: Services, worker: Worker, deps: Deps | None) -> None:
    # The hierarchical-settings cache listens for changes committed by any process.
    assert services.policies.listener is not None
    # The Cal.com slot finder caches for the configured time.
    assert services.slots.cache.ttl_seconds == services.settings.calcom_cache_ttl_seconds
    # Its client spends the API key's budget that every process shares (Cal.com counts per key).
    _assert_shared_budget(services.slots, services.settings)
    # The worker's activities use exactly these parts: no second, uncached resolver or finder anywhere.
    resolvers = _held_by_activities(worker, PolicyResolver)
    assert resolvers
    assert all(resolver is services.policies for resolver in resolvers)
    assert _held_by_activities(worker, SlotFinder) == [services.slots]
    assert _held_by_activities(worker, NotificationSettings) == [services.notification_settings]
    assert services.notification_settings.listener is services.policies.listener
    if deps is not None:
        assert deps.policies is services.policies
        assert deps.notification_settings is services.notification_settings
        assert deps.slots is services.slots


def _assert_shared_budget(slots: SlotFinder, settings: Settings) -> None:
    budget = slots.client.limiter.budget
    assert isinstance(budget, PgRateBudget)
    assert budget.key_hash == budget_key(settings.calcom_url(), settings.calcom_api_key)


def _settings(database_url: URL, dev_env: WorkflowEnvironment, task_queue: str) -> Settings:
    return Settings(
        database_url=render(database_url),
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=task_queue,
    )


async def test_make_dev_builds_worker_and_api_through_the_composition_root(
    database_url: URL, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    settings = _settings(database_url, dev_env, task_queue)
    async with dev_processes(settings, render(database_url)) as dev:
        _assert_wired(dev.services, dev.worker, dev.app.state.deps)


async def test_production_worker_and_api_are_wired_the_same_way(
    database_url: URL, dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    settings = _settings(database_url, dev_env, task_queue)
    async with open_services(settings) as services:
        _assert_wired(services, worker_for(services), None)
    async with open_api_deps(settings) as deps:
        assert deps.policies.listener is not None
        assert deps.notification_settings.listener is deps.policies.listener
        assert deps.slots.cache.ttl_seconds == settings.calcom_cache_ttl_seconds
        _assert_shared_budget(deps.slots, settings)
