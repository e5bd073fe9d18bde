"""Cal.com slot lookups under its rate limit: a storm of 429s and a forced block, and two workers plus the
API on one API key firing at once.

Lookups come from where they come from in production: a callback for a bookable service makes its
worker look up free slots (the `callback.slots_suggested` event ends it), and `GET
/v1/services/{id}/slots` makes the API look them up (200, or 503 with Retry-After when Cal.com's limit
is used up: both are a defined end). Every service has an event type of its own, so no cache answers
for another.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from chaos.checks import until, workflow_health
from chaos.lab import Lab
from chaos.scenario import Outcome, Scenario
from chaos.scenarios.common import create_many, new_callback
from devstack.calcom_fake import EventType, FakeCalcom, RateLimitConfig, working_hours
from devstack.tenants import SeededTenant, seed_tenant
from models.tables import CallbackEventRow
from store import api_keys
from store.db import transaction

FIRST_EVENT_TYPE = 2001
API_ANSWER_WITHIN_SECONDS = 30.0


@dataclass
class LookupWorld:
    fake: FakeCalcom
    url: str
    tenant: SeededTenant
    api_secret: str

    def calcom_env(self, key: str) -> dict[str, str]:
        return {"CALCOM_BASE_URL": self.url, "CALCOM_API_KEY": key}


async def lookup_world(lab: Lab, services: int, rate_limit: RateLimitConfig) -> LookupWorld:
    """The fake Cal.com with `services` event types open around the clock, a tenant with one bookable
    service per event type, and a service API key of that tenant."""
    fake = FakeCalcom(event_types=[], rate_limit=rate_limit)
    ids = list(range(FIRST_EVENT_TYPE, FIRST_EVENT_TYPE + services))
    for event_type in ids:
        fake.add_event_type(
            EventType(
                event_type,
                f"chaos-{event_type}",
                30,
                "Europe/Berlin",
                working_hours("mon-sun", "00:00", "24:00"),
            )
        )
    url = await lab.serve_calcom(fake)
    async with transaction(lab.sessions) as session:
        tenant = await seed_tenant(session, name=f"Chaos {lab.name}", staff=2, linked=2, event_type_ids=ids)
        key = await api_keys.create_key(session, name="chaos", role="service", company_id=tenant.company_id)
    return LookupWorld(fake, url, tenant, key.secret)


@dataclass
class Lookups:
    """What a batch of lookups came to."""

    worker_done: int = 0
    worker_total: int = 0
    api: list[int | str] | None = None  # HTTP status per API lookup, or "hung"

    def report(self, out: Outcome, label: str) -> None:
        api = self.api or []
        ok = sum(1 for status in api if status == 200)
        busy = sum(1 for status in api if status == 503)
        out.figure(f"{label}_worker", f"{self.worker_done}/{self.worker_total}")
        out.figure(f"{label}_api_200/503", f"{ok}/{busy}")
        out.add_lost(self.worker_total - self.worker_done, f"worker lookups ({label}) that never ended")
        out.add_lost(len(api) - ok - busy, f"API lookups ({label}) without a defined answer: {api}")


async def api_lookup(lab: Lab, api: str, world: LookupWorld, service_id: int) -> int | str:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    try:
        async with httpx.AsyncClient(base_url=api, timeout=API_ANSWER_WITHIN_SECONDS) as http:
            response = await http.get(
                f"/v1/services/{service_id}/slots",
                params={"start": start.isoformat(), "end": (start + timedelta(days=2)).isoformat()},
                headers={"Authorization": f"Bearer {world.api_secret}"},
            )
    except httpx.TimeoutException:
        return "hung"
    if response.status_code == 503 and "retry-after" not in response.headers:
        return "503 without Retry-After"
    return response.status_code


async def suggested(lab: Lab, ids: list[object]) -> int:
    """How many of the callbacks have their slot lookup ended (`callback.slots_suggested`)."""
    async with lab.sessions() as session:
        found = await session.scalar(
            select(func.count(func.distinct(CallbackEventRow.callback_request_id))).where(
                CallbackEventRow.callback_request_id.in_(ids),
                CallbackEventRow.type == "callback.slots_suggested",
            )
        )
    return int(found or 0)


async def fire(
    lab: Lab, world: LookupWorld, api: str, worker_services: list[int], api_services: list[int], *, key: str
) -> Lookups:
    """Callbacks for `worker_services` and API lookups of `api_services`, all at once; waits (bounded)
    until every lookup has ended."""
    requests = [new_callback(world.tenant, n, service_id=s) for n, s in enumerate(worker_services)]
    created, answers = await asyncio.gather(
        create_many(lab, requests, concurrency=len(requests) or 1, key=key),
        asyncio.gather(*(api_lookup(lab, api, world, service) for service in api_services)),
    )
    ids: list[object] = [state.id for state in created]

    async def all_done() -> bool:
        return await suggested(lab, ids) == len(ids)

    await until(all_done, 90, interval=0.5)
    return Lookups(await suggested(lab, ids), len(ids), list(answers))


async def storm_and_block(lab: Lab, out: Outcome) -> None:
    world = await lookup_world(lab, 40, RateLimitConfig(limit=1000, window_ms=4000, block_ms=6000))
    # The worker and the API on keys of their own: each must heed the 429s it was answered.
    await lab.start_worker(world.calcom_env("cal_chaos_worker_key"))
    api = await lab.start_api(world.calcom_env("cal_chaos_api_key"))
    services = world.tenant.service_ids
    world.fake.fail_next(429, 12)  # a storm: the next twelve requests answer 429
    (await fire(lab, world, api, services[0:10], services[10:20], key="storm")).report(out, "storm")
    world.fake.force_block(6)  # then everything is refused for 6 s
    (await fire(lab, world, api, services[20:30], services[30:40], key="block")).report(out, "block")
    ignored = world.fake.ignored_waits(grace=0.5)
    out.figure("requests", len(world.fake.requests))
    out.figure("429s", world.fake.refused)
    out.figure("sent_while_told_to_wait", len(ignored))
    out.check(not ignored, f"{len(ignored)} requests went out while a 429 still said wait: {ignored[:2]}")
    (await workflow_health(lab)).report(out)


async def shared_budget(lab: Lab, out: Outcome) -> None:
    # Cal.com's limit is per API key; this fake's is 20 per 10 s, so 42 lookups need three windows.
    world = await lookup_world(lab, 42, RateLimitConfig(limit=20, window_ms=10_000, block_ms=10_000))
    key = "cal_chaos_shared_key"
    await asyncio.gather(lab.start_worker(world.calcom_env(key)), lab.start_worker(world.calcom_env(key)))
    api = await lab.start_api(world.calcom_env(key))
    services = world.tenant.service_ids
    # One answer each way first: from then on the key's budget is known from Cal.com's headers.
    (await fire(lab, world, api, services[0:1], services[1:2], key="warm")).report(out, "warmup")
    (await fire(lab, world, api, services[2:22], services[22:42], key="burst")).report(out, "burst")
    out.figure("requests", len(world.fake.requests))
    out.figure("429s", world.fake.refused)
    out.check(world.fake.refused == 0, f"Cal.com answered 429 {world.fake.refused} times on one key")
    (await workflow_health(lab)).report(out)


SCENARIOS = [
    Scenario(
        "calcom-429-storm",
        "a storm of 429s, then a forced 6 s block, under worker and API lookups: no request goes out while "
        "a 429 still says wait, every lookup ends defined (slots, or 503 with Retry-After)",
        storm_and_block,
        budget_seconds=240,
    ),
    Scenario(
        "calcom-shared-budget",
        "two workers and the API on one Cal.com key fire 40 lookups at once (limit 20 per 10 s): 0 × 429 "
        "at Cal.com, every lookup ends defined",
        shared_budget,
        budget_seconds=240,
    ),
]
