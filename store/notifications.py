"""Who hears about events: the people they may reach, the branches' quiet hours, and the plan of
deliveries of each.

Events are resolved in batches (the outbox dispatcher's claim; a single event is the batch of one), and a
batch reads a constant number of queries whatever its size and the number of recipients and levels: the
catalogue entries (cached per process), the events' settings in their companies
(store/notification_settings.py: one query on cache misses, none on hits), and the places, staff and
customers they can reach (store/notification_people.py: one query each, only those some event needs).
The delivery log that makes sending idempotent is store/notification_log.py.
"""

from __future__ import annotations

import time as clock
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.notifications import CatalogueEntry, NotifyEvent, PlannedDelivery
from models.tables import Company
from rules.notifications import RetryDefaults, plan_deliveries
from store import notification_people as people
from store.notification_people import QuietDefault
from store.notification_settings import NotificationSettings, catalogue_entries, channel_configs_of

# The catalogue is data the migrations write: read once per process and event type, again after this.
CATALOGUE_TTL_SECONDS = 300.0
_catalogue: dict[str, tuple[float, CatalogueEntry | None]] = {}


async def cached_catalogue_entries(
    session: AsyncSession, event_types: Iterable[str]
) -> dict[str, CatalogueEntry | None]:
    """The entry of each type (None: unknown), the ones not cached read in one query."""
    now = clock.monotonic()
    found: dict[str, CatalogueEntry | None] = {}
    missing: list[str] = []
    for event_type in dict.fromkeys(event_types):
        cached = _catalogue.get(event_type)
        if cached is not None and cached[0] > now:
            found[event_type] = cached[1]
        else:
            missing.append(event_type)
    if missing:
        loaded = await catalogue_entries(session, missing)
        for event_type in missing:
            found[event_type] = loaded.get(event_type)
            _catalogue[event_type] = (now + CATALOGUE_TTL_SECONDS, found[event_type])
    return found


async def resolve_batch(
    session: AsyncSession,
    events: Sequence[NotifyEvent],
    *,
    defaults: RetryDefaults,
    quiet_default: QuietDefault | None,
    settings: NotificationSettings | None = None,
) -> list[list[PlannedDelivery]]:
    """Every message each event causes, each with its channel settings and the time it may go out, in
    the order of `events`. `settings`: the process's cached resolver; without one the settings are read
    uncached. An unknown or inactive event, or one whose audience is empty, reads nothing more."""
    plans: list[list[PlannedDelivery]] = [[] for _ in events]
    catalogue = await cached_catalogue_entries(session, (event.type for event in events))
    live: list[tuple[int, CatalogueEntry, people.Reach]] = []
    wanted: dict[int, dict[str, None]] = {}
    for index, event in enumerate(events):
        entry = catalogue[event.type]
        if entry is None or not entry.is_active or not entry.audience:
            continue  # nobody to reach: the rules would plan nothing
        live.append((index, entry, people.reach(event, entry.audience)))
        wanted.setdefault(event.subject.company_id, {})[event.type] = None
    if not live:
        return plans
    configs = await channel_configs_of(session, wanted, settings)
    loaded = await people.load(await session.connection(), [reach for _, _, reach in live], quiet_default)
    for index, entry, reach in live:
        event = reach.event
        place = loaded.place(event)
        plans[index] = plan_deliveries(
            event,
            entry,
            loaded.people(reach, place),
            configs[(event.subject.company_id, event.type)],
            defaults=defaults,
            quiet=place.quiet,
        )
    return plans


async def resolve_deliveries(
    session: AsyncSession,
    event: NotifyEvent,
    *,
    defaults: RetryDefaults,
    quiet_default: QuietDefault | None,
    settings: NotificationSettings | None = None,
) -> list[PlannedDelivery]:
    """One event's messages: the batch of one."""
    [planned] = await resolve_batch(
        session, [event], defaults=defaults, quiet_default=quiet_default, settings=settings
    )
    return planned


async def webhook_secret(session: AsyncSession, company_id: int) -> str | None:
    return await session.scalar(select(Company.webhook_secret).where(Company.id == company_id))
