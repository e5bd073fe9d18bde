"""Notification settings in PostgreSQL: the event catalogue they name, set/list/delete, and the cached
resolver of the configurations an event is planned with.

Notification settings are the second table of hierarchical settings (store/hierarchy.py), next to
policies: the same four levels, the same target check, the same key-by-key merge with sources, and the
same cache, invalidated in every process by the NOTIFY trigger of migration 0004. A topic is an event
type; its facets are the channels, so a company's settings of one event are one snapshot.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.notifications import CatalogueEntry, Channel, EffectiveSetting, StoredNotificationSetting
from models.policies import PolicySubject
from models.tables import NotificationConfiguration, NotificationEventMapping
from rules.notifications import DELIVERABLE, ChannelConfigs, RetryDefaults, effective_settings
from store.hierarchy import HierarchyResolver, SettingsTable, check_target, load_sections, parse_level
from store.settings_cache import DEFAULT_TTL_SECONDS, ChangeFeed, Sections, SettingsCache, SettingsListener
from telemetry import metrics

# --- the catalogue -------------------------------------------------------------------------------


def _entry(row: NotificationEventMapping) -> CatalogueEntry:
    metadata = row.metadata_ or {}
    return CatalogueEntry(
        event_type=row.event_type,
        label=row.event_label,
        category=row.event_category,
        default_channels=[Channel(channel) for channel in row.default_channels],
        is_system_event=row.is_system_event,
        is_active=row.is_active,
        audience=metadata.get("audience", []),
        description=row.description,
    )


async def load_catalogue(session: AsyncSession) -> list[CatalogueEntry]:
    rows = await session.scalars(
        select(NotificationEventMapping)
        .where(NotificationEventMapping.deleted_at.is_(None))
        .order_by(NotificationEventMapping.event_type)
    )
    return [_entry(row) for row in rows]


CATALOGUE_ENTRIES = select(NotificationEventMapping).where(
    NotificationEventMapping.event_type.in_(bindparam("event_types", expanding=True)),
    NotificationEventMapping.deleted_at.is_(None),
)


async def catalogue_entries(session: AsyncSession, event_types: Iterable[str]) -> dict[str, CatalogueEntry]:
    """The live entries of the given event types, in one query; unknown types are left out."""
    wanted = sorted(set(event_types))
    if not wanted:
        return {}
    rows = await session.scalars(CATALOGUE_ENTRIES, {"event_types": wanted})
    return {row.event_type: _entry(row) for row in rows}


async def catalogue_entry(session: AsyncSession, event_type: str) -> CatalogueEntry | None:
    return (await catalogue_entries(session, [event_type])).get(event_type)


# --- the table as hierarchical settings ----------------------------------------------------------


def _layer_config(row: RowMapping) -> dict[str, Any]:
    """The keys a row sets: every column, except the nullable ones left empty (those inherit)."""
    config: dict[str, Any] = {
        "is_enabled": row["is_enabled"],
        "retry_count": row["retry_count"],
        "retry_delay_minutes": row["retry_delay_minutes"],
    }
    if row["fallback_channel"] is not None:
        config["fallback_channel"] = row["fallback_channel"]
    if row["template_override"] is not None:
        config["template_override"] = row["template_override"]
    return config


NOTIFICATION_TABLE = SettingsTable(
    model=NotificationConfiguration,
    topic="event_type",
    facet="channel",
    values=("is_enabled", "retry_count", "retry_delay_minutes", "fallback_channel", "template_override"),
    keys=_layer_config,
)
# Channel and payload of the trigger of migration 0004.
NOTIFICATION_FEED = ChangeFeed(
    table="notification_configurations",
    channel="notification_settings_changed",
    topic_key="event_type",
    lookups=metrics.NOTIFICATION_SETTINGS_CACHE_LOOKUPS,
)


class NotificationSettingsCache(SettingsCache):
    """The settings cache of `notification_configurations`."""

    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        super().__init__(NOTIFICATION_FEED, ttl_seconds, clock)


def _by_channel(sections: Sections) -> ChannelConfigs:
    return {Channel(channel): configs for channel, configs in sections.items()}


class NotificationSettings(HierarchyResolver[NotificationSettingsCache]):
    """The configurations of a company's events, per channel, through the process-wide cache."""

    table = NOTIFICATION_TABLE

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: NotificationSettingsCache | None = None,
        listener: SettingsListener | None = None,
    ) -> None:
        super().__init__(sessions, cache if cache is not None else NotificationSettingsCache(), listener)

    async def channel_configs(
        self, company_id: int, event_types: Sequence[str], *, session: AsyncSession | None = None
    ) -> dict[str, ChannelConfigs]:
        """{event_type: {channel: {(level, configurable_id): keys}}}; all misses in one query."""
        found = await self.channel_configs_of({company_id: event_types}, session=session)
        return {event_type: configs for (_, event_type), configs in found.items()}

    async def channel_configs_of(
        self, wanted: Mapping[int, Iterable[str]], *, session: AsyncSession | None = None
    ) -> dict[tuple[int, str], ChannelConfigs]:
        """{(company_id, event_type): configs} of several companies; all misses in one query."""
        snapshots = await self.snapshots_of(wanted, session=session)
        return {key: _by_channel(snapshot.sections) for key, snapshot in snapshots.items()}


async def channel_configs(
    session: AsyncSession,
    company_id: int,
    event_types: Sequence[str],
    settings: NotificationSettings | None = None,
) -> dict[str, ChannelConfigs]:
    """Through the cache of `settings`, or straight from the database without one."""
    found = await channel_configs_of(session, {company_id: event_types}, settings)
    return {event_type: configs for (_, event_type), configs in found.items()}


async def channel_configs_of(
    session: AsyncSession,
    wanted: Mapping[int, Iterable[str]],
    settings: NotificationSettings | None = None,
) -> dict[tuple[int, str], ChannelConfigs]:
    """The configs of several companies' events (a batch of events), in at most one query."""
    if settings is not None:
        return await settings.channel_configs_of(wanted, session=session)
    wanted_lists = {company_id: list(dict.fromkeys(types)) for company_id, types in wanted.items()}
    topics = {event_type for types in wanted_lists.values() for event_type in types}
    loaded = await load_sections(session, NOTIFICATION_TABLE, wanted_lists, topics)
    return {(c, t): _by_channel(loaded[(c, t)]) for c, types in wanted_lists.items() for t in types}


# --- settings: read ------------------------------------------------------------------------------


def _stored(row: NotificationConfiguration) -> StoredNotificationSetting:
    return StoredNotificationSetting(
        id=row.id,
        company_id=row.company_id,
        level=row.configurable_type,
        entity_id=row.configurable_id,
        event_type=row.event_type,
        channel=Channel(row.channel),
        is_enabled=row.is_enabled,
        fallback_channel=Channel(row.fallback_channel) if row.fallback_channel else None,
        retry_count=row.retry_count,
        retry_delay_minutes=row.retry_delay_minutes,
        template_override=row.template_override,
    )


async def list_notification_settings(
    session: AsyncSession,
    *,
    company_id: int,
    level: str | None = None,
    entity_id: object | None = None,
    event_type: str | None = None,
    channel: str | None = None,
) -> list[StoredNotificationSetting]:
    """The stored (not merged) settings of a company, optionally of one entity, event or channel."""
    query = select(NotificationConfiguration).where(
        NotificationConfiguration.company_id == company_id, NotificationConfiguration.deleted_at.is_(None)
    )
    if level is not None:
        query = query.where(NotificationConfiguration.configurable_type == level)
    if entity_id is not None:
        query = query.where(NotificationConfiguration.configurable_id == str(entity_id))
    if event_type is not None:
        query = query.where(NotificationConfiguration.event_type == event_type)
    if channel is not None:
        query = query.where(NotificationConfiguration.channel == channel)
    rows = await session.scalars(
        query.order_by(
            NotificationConfiguration.event_type,
            NotificationConfiguration.channel,
            NotificationConfiguration.configurable_type,
            NotificationConfiguration.configurable_id,
        )
    )
    return [_stored(row) for row in rows]


async def effective_notification_settings(
    session: AsyncSession,
    *,
    company_id: int,
    defaults: RetryDefaults,
    branch_id: int | None = None,
    service_id: int | None = None,
    staff_id: uuid.UUID | None = None,
    event_type: str | None = None,
    settings: NotificationSettings | None = None,
) -> list[EffectiveSetting]:
    """What applies to a message for the given branch/service/staff member, per event and channel,
    with the level that supplied each key (for `GET /v1/notification-settings/effective`)."""
    catalogue = [entry for entry in await load_catalogue(session) if event_type in (None, entry.event_type)]
    configs = await channel_configs(session, company_id, [entry.event_type for entry in catalogue], settings)
    entities = PolicySubject(
        company_id=company_id, branch_id=branch_id, service_id=service_id, staff_id=staff_id
    ).entities()
    channels = [Channel.EMAIL, Channel.SMS, Channel.WEBHOOK]
    found: list[EffectiveSetting] = []
    for entry in catalogue:
        merged = effective_settings(entry, configs[entry.event_type], entities, defaults, channels)
        found.extend(EffectiveSetting(event_type=entry.event_type, setting=merged[c]) for c in channels)
    return found


# --- settings: write -----------------------------------------------------------------------------


class InvalidNotificationSetting(ValueError):
    """The event type, channel or fallback is not one the engine knows; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


async def set_notification_setting(
    session: AsyncSession,
    *,
    company_id: int,
    level: str,
    entity_id: object,
    event_type: str,
    channel: str,
    is_enabled: bool = True,
    fallback_channel: str | None = None,
    retry_count: int = 3,
    retry_delay_minutes: int = 5,
    template_override: str | None = None,
) -> StoredNotificationSetting:
    """Create or replace the setting of one entity for one event and channel. Nothing is written when
    the event, channel, fallback or target is invalid (InvalidNotificationSetting / UnknownTarget)."""
    errors = []
    if await catalogue_entry(session, event_type) is None:
        errors.append(f"unknown event type {event_type!r}")
    deliverable = sorted({c.value for channels in DELIVERABLE.values() for c in channels})
    if channel not in deliverable:
        errors.append(f"unknown channel {channel!r} (allowed: {', '.join(deliverable)})")
    if fallback_channel is not None and fallback_channel not in deliverable:
        errors.append(f"unknown fallback channel {fallback_channel!r}")
    if fallback_channel is not None and fallback_channel == channel:
        errors.append("the fallback channel must differ from the channel")
    if retry_count < 0 or retry_count > 20:
        errors.append("retry_count must be between 0 and 20")
    if retry_delay_minutes < 0 or retry_delay_minutes > 24 * 60:
        errors.append("retry_delay_minutes must be between 0 and 1440")
    if errors:
        raise InvalidNotificationSetting(errors)
    target_level = parse_level(level)
    configurable_id = await check_target(session, company_id, target_level, entity_id)
    values = {
        "is_enabled": is_enabled,
        "fallback_channel": fallback_channel,
        "retry_count": retry_count,
        "retry_delay_minutes": retry_delay_minutes,
        "template_override": template_override,
    }
    statement = (
        insert(NotificationConfiguration)
        .values(
            company_id=company_id,
            configurable_type=target_level.value,
            configurable_id=configurable_id,
            event_type=event_type,
            channel=channel,
            **values,
        )
        .on_conflict_do_update(
            index_elements=["company_id", "configurable_type", "configurable_id", "event_type", "channel"],
            index_where=NotificationConfiguration.deleted_at.is_(None),
            set_={**values, "updated_at": func.now()},
        )
        .returning(NotificationConfiguration)
    )
    row = (await session.execute(statement)).scalar_one()
    return _stored(row)


async def delete_notification_setting(
    session: AsyncSession, *, company_id: int, level: str, entity_id: object, event_type: str, channel: str
) -> bool:
    """Soft-delete the setting; False when there was none."""
    result = await session.execute(
        update(NotificationConfiguration)
        .where(
            NotificationConfiguration.company_id == company_id,
            NotificationConfiguration.configurable_type == level,
            NotificationConfiguration.configurable_id == str(entity_id),
            NotificationConfiguration.event_type == event_type,
            NotificationConfiguration.channel == channel,
            NotificationConfiguration.deleted_at.is_(None),
        )
        .values(deleted_at=func.now(), updated_at=func.now())
        .returning(NotificationConfiguration.id)
    )
    return result.first() is not None
