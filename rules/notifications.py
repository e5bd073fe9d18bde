"""Who hears about an event, on which channel, and when: pure rules, no I/O.

Settings are merged with the same key-by-key hierarchy as policies (rules/policy_merge.py): a
notification configuration row of (event, channel) at the staff, service, branch or company level is one
layer, and the most specific level that sets a key wins. The staff level is the *recipient's* own
preference, so it applies only to messages addressed to that staff member; customer and webhook messages
are governed by company → branch → service.

A channel that is disabled, or that the recipient has no address for, falls back to its configured
`fallback_channel` (unless that channel is itself switched off by a setting); so does a message whose
channel failed for good (retries used up, refused): it carries its fallback along (`fallback`). Quiet
hours (branch local time) hold back messages to people, never to machines (webhooks), unless the subject
is urgent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from models.callbacks import CallbackEvent, Priority
from models.notifications import (
    Audience,
    CatalogueEntry,
    Channel,
    ChannelSetting,
    NotifyEvent,
    PlannedDelivery,
    Recipient,
    RecipientType,
)
from rules.policy_merge import PolicyLayer, layers_for, merge_layers

# The channels this engine can deliver to each kind of recipient, in order of preference.
DELIVERABLE: dict[RecipientType, tuple[Channel, ...]] = {
    RecipientType.STAFF: (Channel.EMAIL, Channel.SMS),
    RecipientType.CUSTOMER: (Channel.EMAIL, Channel.SMS),
    RecipientType.WEBHOOK: (Channel.WEBHOOK,),
}

SETTING_KEYS = ("is_enabled", "fallback_channel", "retry_count", "retry_delay_minutes", "template_override")

# {channel: {(level, configurable_id): config}}: every configuration of one event type in a company.
ChannelConfigs = Mapping[Channel, Mapping[tuple[str, str], Mapping[str, Any]]]


@dataclass(frozen=True)
class RetryDefaults:
    retry_count: int = 3
    retry_delay_minutes: int = 5


@dataclass(frozen=True)
class QuietHours:
    """Branch-local wall-clock window; start > end spans midnight (22:00–07:00); start == end is none."""

    start: time
    end: time
    time_zone: str = "UTC"


@dataclass(frozen=True)
class StaffMember:
    id: UUID
    name: str
    active: bool = True
    email: str | None = None
    phone: str | None = None
    locale: str = "de"

    def recipient(self) -> Recipient:
        return Recipient(
            type=RecipientType.STAFF,
            id=str(self.id),
            name=self.name,
            locale=self.locale,
            email=self.email,
            phone=self.phone,
        )


@dataclass(frozen=True)
class People:
    """Everybody an event could reach, as loaded for it (store/notifications.py)."""

    staff: Mapping[UUID, StaffMember] = field(default_factory=dict)
    managers: Sequence[UUID] = ()
    customer: Recipient | None = None
    webhook: Recipient | None = None


# --- settings ------------------------------------------------------------------------------------


def merge_setting(
    entry: CatalogueEntry, channel: Channel, layers: Sequence[PolicyLayer], defaults: RetryDefaults
) -> ChannelSetting:
    """The catalogue's default (on for its default channels) overlaid key by key by the layers."""
    merged = merge_layers(layers)
    config: dict[str, Any] = {
        "is_enabled": channel in entry.default_channels,
        "fallback_channel": None,
        "retry_count": defaults.retry_count,
        "retry_delay_minutes": defaults.retry_delay_minutes,
        "template_override": None,
    }
    sources = dict.fromkeys(config, "default")
    for key, value in merged.config.items():
        if key in SETTING_KEYS:
            config[key] = value
            source = merged.sources[key]
            sources[key] = f"{source.level}:{source.entity_id}"
    return ChannelSetting(
        channel=channel,
        enabled=bool(config["is_enabled"]),
        fallback_channel=Channel(config["fallback_channel"]) if config["fallback_channel"] else None,
        retry_count=int(config["retry_count"]),
        retry_delay_minutes=int(config["retry_delay_minutes"]),
        template_override=config["template_override"],
        sources=sources,
    )


def entities_for(event: NotifyEvent, recipient: Recipient | None) -> dict[str, str]:
    """The {level: id} chain whose settings govern a message of this event to this recipient."""
    subject = event.subject
    entities = {"company": str(subject.company_id)}
    if subject.branch_id is not None:
        entities["branch"] = str(subject.branch_id)
    if subject.service_id is not None:
        entities["service"] = str(subject.service_id)
    if recipient is not None and recipient.type is RecipientType.STAFF:
        entities["staff"] = recipient.id
    return entities


def effective_settings(
    entry: CatalogueEntry,
    configs: ChannelConfigs,
    entities: Mapping[str, str],
    defaults: RetryDefaults,
    channels: Iterable[Channel] = tuple(Channel),
) -> dict[Channel, ChannelSetting]:
    return {
        channel: merge_setting(entry, channel, layers_for(configs.get(channel, {}), entities), defaults)
        for channel in channels
    }


def _explicitly_disabled(setting: ChannelSetting) -> bool:
    return not setting.enabled and setting.sources.get("is_enabled", "default") != "default"


def choose_channels(recipient: Recipient, settings: Mapping[Channel, ChannelSetting]) -> list[ChannelSetting]:
    """The channels one recipient gets the event on: each enabled, reachable channel, or its fallback."""
    deliverable = DELIVERABLE[recipient.type]
    chosen: dict[Channel, ChannelSetting] = {}
    for channel in deliverable:
        setting = settings[channel]
        if setting.enabled and recipient.address(channel):
            chosen.setdefault(channel, setting)
            continue
        fallback = setting.fallback_channel
        wanted = setting.enabled or setting.sources.get("is_enabled", "default") != "default"
        if not wanted or fallback is None or fallback not in deliverable or fallback in chosen:
            continue
        fallback_setting = settings[fallback]
        if recipient.address(fallback) and not _explicitly_disabled(fallback_setting):
            chosen[fallback] = fallback_setting
    return list(chosen.values())


# --- recipients ----------------------------------------------------------------------------------


def _uuid(value: object) -> UUID | None:
    if value is None:
        return None
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        return None


def assignee_of(event: NotifyEvent) -> UUID | None:
    """The staff member the event is for: the one just assigned or escalated to, else the subject's."""
    payload = event.payload
    if event.type.endswith(".assigned"):
        return _uuid(payload.get("staff_id")) or event.subject.assigned_staff_id
    if event.type.endswith(".escalated"):
        return _uuid(payload.get("escalated_to")) or event.subject.assigned_staff_id
    return event.subject.assigned_staff_id


def previous_assignee_of(event: NotifyEvent) -> UUID | None:
    payload = event.payload
    return _uuid(payload.get("escalated_from")) or _uuid(payload.get("previous_staff_id"))


def recipients_for(event: NotifyEvent, entry: CatalogueEntry, people: People) -> list[Recipient]:
    """The event's audience, each person once, inactive staff left out, in a stable order."""
    found: dict[str, Recipient] = {}

    def add_staff(staff_id: UUID | None) -> None:
        member = people.staff.get(staff_id) if staff_id is not None else None
        if member is not None and member.active:
            found.setdefault(f"staff:{member.id}", member.recipient())

    for role in entry.audience:
        if role is Audience.ASSIGNEE:
            add_staff(assignee_of(event))
        elif role is Audience.PREVIOUS_ASSIGNEE:
            previous = previous_assignee_of(event)
            if previous != assignee_of(event):
                add_staff(previous)
        elif role is Audience.MANAGERS:
            for manager in people.managers:
                add_staff(manager)
        elif role is Audience.ASSIGNEE_OR_MANAGERS:
            assignee = assignee_of(event)
            if assignee is not None and assignee in people.staff and people.staff[assignee].active:
                add_staff(assignee)
            else:
                for manager in people.managers:
                    add_staff(manager)
        elif role is Audience.CUSTOMER and people.customer is not None:
            found.setdefault(people.customer.key, people.customer)
        elif role is Audience.WEBHOOK and people.webhook is not None:
            found.setdefault(people.webhook.key, people.webhook)
    return list(found.values())


# --- quiet hours ---------------------------------------------------------------------------------


def quiet_hours_end(at: datetime, quiet: QuietHours) -> datetime | None:
    """When the quiet hours around `at` end (UTC), or None when `at` is outside them."""
    if quiet.start == quiet.end:
        return None
    zone = ZoneInfo(quiet.time_zone)
    local = at.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        inside, end_day = quiet.start <= now < quiet.end, local.date()
    elif now >= quiet.start:
        inside, end_day = True, local.date() + timedelta(days=1)
    else:
        inside, end_day = now < quiet.end, local.date()
    if not inside:
        return None
    return datetime.combine(end_day, quiet.end, tzinfo=zone).astimezone(UTC)


def held_until(event: NotifyEvent, recipient: Recipient, quiet: QuietHours | None) -> datetime | None:
    """Messages to people wait for the end of quiet hours; machines and urgent subjects do not."""
    if quiet is None or recipient.type is RecipientType.WEBHOOK:
        return None
    if event.subject.priority is Priority.URGENT:
        return None
    return quiet_hours_end(event.occurred_at, quiet)


# --- the whole plan ------------------------------------------------------------------------------


def fallback_for(
    recipient: Recipient,
    setting: ChannelSetting,
    settings: Mapping[Channel, ChannelSetting],
    taken: set[Channel],
) -> ChannelSetting | None:
    """The channel a message goes to when its own channel failed for good: the configured fallback, if
    the recipient can be reached there, it is not switched off and the message does not go there anyway."""
    fallback = setting.fallback_channel
    if fallback is None or fallback in taken or fallback not in settings or not recipient.address(fallback):
        return None
    return None if _explicitly_disabled(settings[fallback]) else settings[fallback]


def _planned(
    event: NotifyEvent, recipient: Recipient, setting: ChannelSetting, not_before: datetime | None
) -> PlannedDelivery:
    address = recipient.address(setting.channel)
    assert address is not None
    return PlannedDelivery(
        event=event,
        recipient=recipient,
        channel=setting.channel,
        address=address,
        retry_count=setting.retry_count,
        retry_delay_minutes=setting.retry_delay_minutes,
        template_override=setting.template_override,
        not_before=not_before,
    )


def plan_deliveries(
    event: NotifyEvent,
    entry: CatalogueEntry | None,
    people: People,
    configs: ChannelConfigs,
    *,
    defaults: RetryDefaults,
    quiet: QuietHours | None,
) -> list[PlannedDelivery]:
    """Every message the event causes: one per (recipient, channel). An unknown or inactive event
    causes none."""
    if entry is None or not entry.is_active:
        return []
    planned = []
    for recipient in recipients_for(event, entry, people):
        settings = effective_settings(
            entry, configs, entities_for(event, recipient), defaults, DELIVERABLE[recipient.type]
        )
        not_before = held_until(event, recipient, quiet)
        chosen = choose_channels(recipient, settings)
        taken = {setting.channel for setting in chosen}
        for setting in chosen:
            message = _planned(event, recipient, setting, not_before)
            fallback = fallback_for(recipient, setting, settings, taken)
            if fallback is not None:
                message = message.model_copy(
                    update={"fallback": _planned(event, recipient, fallback, not_before)}
                )
            planned.append(message)
    return planned


# Events that only go into the audit trail: nobody needs a message about them (a reassignment brings
# its own `assigned` event, which tells the new assignee).
AUDIT_ONLY_EVENTS = frozenset(
    {
        "callback.slots_suggested",
        "callback.reassigned",
        "callback.personal_data_erased",
        "callback.reference_dropped",
        "callback.deadline_moved",
        "callback.waiting_for_staff",
        "callback.handed_over",
    }
)


def events_to_notify(events: Sequence[CallbackEvent]) -> list[CallbackEvent]:
    """The events of one step worth a notification: an escalation already tells the new assignee, so
    the `assigned` event it brings along would only say the same thing twice."""
    escalated_to = {
        str(event.payload.get("escalated_to")) for event in events if event.type == "callback.escalated"
    }
    return [
        event
        for event in events
        if event.type not in AUDIT_ONLY_EVENTS
        and not (event.type == "callback.assigned" and str(event.payload.get("staff_id")) in escalated_to)
    ]
