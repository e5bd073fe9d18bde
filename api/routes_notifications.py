"""/v1/notification-settings (admins set who hears of what, on which channel), /v1/notifications (the
delivery log) and /v1/notification-events (the catalogue).

Settings use the same four levels and the same tenancy rule as policies: a setting for another company's
branch, service or staff member is answered 404 like a missing one, and invalid input writes nothing.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status

from api import schemas
from api.auth import Admin, Reader
from api.deps import Deps, get_deps
from api.params import MAX_ID, EntityId, Rfc3339, entity_id
from api.problems import ApiProblem, FieldError, invalid, not_found
from api.scoping import company_of, ensure_entities_of_company
from api.text import Documented, SingleLine
from channels.sandbox import TemplateRefused, check_template, default_sandbox
from channels.templates import SAMPLE_CONTEXT
from models.notifications import CatalogueEntry, Channel, DeliveryStatus, StoredNotificationSetting
from models.policies import Level
from rules.notifications import RetryDefaults
from store import notification_log
from store import notification_settings as store
from store.db import transaction
from store.hierarchy import UnknownTarget

router = APIRouter(tags=["notifications"])

DepsDep = Annotated[Deps, Depends(get_deps)]
EventType = Annotated[
    SingleLine, Path(max_length=100, description="an event of the catalogue, e.g. callback.escalated")
]
# The channels a setting can be made for (push is the console's own, not configurable). Checked with the
# event type by the store, so one answer names every wrong part of the path.
ChannelPath = Annotated[
    SingleLine,
    Path(max_length=32, description="email, sms or webhook"),
    Documented({"enum": ["email", "sms", "webhook"]}),
]
CompanyQuery = Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")]
SETTINGS_PATH = "/v1/notification-settings/{scope}/{scope_id}/{event_type}/{channel}"
MAX_PAGE = 200


def _setting_out(stored: StoredNotificationSetting) -> dict[str, Any]:
    return {
        "id": stored.id,
        "company_id": stored.company_id,
        "scope": stored.level,
        "scope_id": stored.entity_id,
        "event_type": stored.event_type,
        "channel": stored.channel,
        "is_enabled": stored.is_enabled,
        "fallback_channel": stored.fallback_channel,
        "retry_count": stored.retry_count,
        "retry_delay_minutes": stored.retry_delay_minutes,
        "template_override": stored.template_override,
    }


def _field_of(message: str) -> str:
    """The store names each problem in words; a form wants the field it belongs to."""
    for prefix, field in (
        ("unknown event type", "event_type"),
        ("unknown channel", "channel"),
        ("unknown fallback channel", "fallback_channel"),
        ("the fallback channel", "fallback_channel"),
        ("retry_count", "retry_count"),
        ("retry_delay_minutes", "retry_delay_minutes"),
    ):
        if message.startswith(prefix):
            return field
    return "body"


async def _check_template(template: str | None) -> None:
    """Refuse an override that cannot render at all, or only beyond the sandbox's bounds (time, output,
    memory; loops and macros), now, not at 3 a.m. when the first message fails (channels/sandbox.py)."""
    if not template:
        return
    try:
        await check_template(template, SAMPLE_CONTEXT, default_sandbox())
    except TemplateRefused as refused:
        raise invalid("template_override", str(refused)) from None


# --- the catalogue -------------------------------------------------------------------------------


@router.get("/v1/notification-events", response_model=list[CatalogueEntry])
async def notification_events(principal: Reader, deps: DepsDep) -> list[CatalogueEntry]:
    """Every event a setting can name, with its default channels and audience."""
    async with deps.sessions() as session:
        return await store.load_catalogue(session)


# --- settings ------------------------------------------------------------------------------------


@router.get("/v1/notification-settings", response_model=list[schemas.NotificationSettingOut])
async def list_settings(
    principal: Admin,
    deps: DepsDep,
    scope: Level | None = None,
    scope_id: Annotated[
        EntityId | None, Query(description="the entity's id, with or without `scope`")
    ] = None,
    event_type: Annotated[SingleLine | None, Query(max_length=100)] = None,
    channel: Channel | None = None,
    company_id: CompanyQuery = None,
) -> list[dict[str, Any]]:
    """The stored settings of the company (not merged), optionally of one entity, event or channel."""
    company = company_of(principal, company_id)
    entity = scope_id  # a filter: an id of another form than the scope's simply matches nothing
    async with deps.sessions() as session:
        found = await store.list_notification_settings(
            session,
            company_id=company,
            level=scope.value if scope else None,
            entity_id=entity,
            event_type=event_type,
            channel=channel.value if channel else None,
        )
    return [_setting_out(stored) for stored in found]


@router.get("/v1/notification-settings/effective", response_model=list[schemas.EffectiveNotificationOut])
async def effective_settings(
    principal: Admin,
    deps: DepsDep,
    branch_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    service_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    staff_id: uuid.UUID | None = None,
    event_type: Annotated[SingleLine | None, Query(max_length=100)] = None,
    company_id: CompanyQuery = None,
) -> list[dict[str, Any]]:
    """What applies to a message about these entities, per event and channel, and which level supplied
    each key ("default" = the catalogue and the engine's settings)."""
    company = company_of(principal, company_id)
    await deps.notification_settings.sync()  # an admin's own change, just made, shows
    async with deps.sessions() as session:
        await ensure_entities_of_company(session, company, branch_id, service_id, staff_id)
        if event_type is not None and await store.catalogue_entry(session, event_type) is None:
            raise invalid("event_type", f"unknown event type {event_type!r}")
        found = await store.effective_notification_settings(
            session,
            company_id=company,
            defaults=RetryDefaults(
                deps.settings.notify_retry_count, deps.settings.notify_retry_delay_minutes
            ),
            branch_id=branch_id,
            service_id=service_id,
            staff_id=staff_id,
            event_type=event_type,
            settings=deps.notification_settings,
        )
    return [
        {
            "event_type": item.event_type,
            **item.setting.model_dump(exclude={"channel"}),
            "channel": item.setting.channel,
        }
        for item in found
    ]


@router.get(SETTINGS_PATH, response_model=schemas.NotificationSettingOut)
async def get_setting(
    scope: Level,
    scope_id: EntityId,
    event_type: EventType,
    channel: ChannelPath,
    principal: Admin,
    deps: DepsDep,
    company_id: CompanyQuery = None,
) -> dict[str, Any]:
    company = company_of(principal, company_id)
    entity = entity_id(scope, scope_id)
    async with deps.sessions() as session:
        found = await store.list_notification_settings(
            session,
            company_id=company,
            level=scope.value,
            entity_id=entity,
            event_type=event_type,
            channel=channel,
        )
    if not found:
        raise not_found(f"{event_type} {channel} setting of {scope.value}", entity)
    return _setting_out(found[0])


@router.put(SETTINGS_PATH, response_model=schemas.NotificationSettingOut)
async def put_setting(
    scope: Level,
    scope_id: EntityId,
    event_type: EventType,
    channel: ChannelPath,
    body: schemas.NotificationSettingBody,
    principal: Admin,
    deps: DepsDep,
    company_id: CompanyQuery = None,
) -> dict[str, Any]:
    """Create or replace one entity's setting of one event on one channel."""
    company = company_of(principal, company_id)
    entity = entity_id(scope, scope_id)
    await _check_template(body.template_override)
    settings = deps.settings
    try:
        async with transaction(deps.sessions) as session:
            stored = await store.set_notification_setting(
                session,
                company_id=company,
                level=scope.value,
                entity_id=entity,
                event_type=event_type,
                channel=channel,
                is_enabled=body.is_enabled,
                fallback_channel=body.fallback_channel.value if body.fallback_channel else None,
                retry_count=settings.notify_retry_count if body.retry_count is None else body.retry_count,
                retry_delay_minutes=(
                    settings.notify_retry_delay_minutes
                    if body.retry_delay_minutes is None
                    else body.retry_delay_minutes
                ),
                template_override=body.template_override or None,
            )
    except store.InvalidNotificationSetting as exc:
        errors = [FieldError(field=_field_of(message), message=message) for message in exc.errors]
        raise ApiProblem(
            422,
            str(exc),
            slug="invalid-notification-setting",
            title="Invalid notification setting",
            errors=errors,
        ) from None
    except UnknownTarget:
        raise not_found(scope.value, entity) from None
    return _setting_out(stored)


@router.delete(SETTINGS_PATH, status_code=status.HTTP_204_NO_CONTENT)
async def delete_setting(
    scope: Level,
    scope_id: EntityId,
    event_type: EventType,
    channel: ChannelPath,
    principal: Admin,
    deps: DepsDep,
    company_id: CompanyQuery = None,
) -> Response:
    """Remove the setting (soft delete): the entity inherits from the level above again."""
    company = company_of(principal, company_id)
    entity = entity_id(scope, scope_id)
    async with transaction(deps.sessions) as session:
        deleted = await store.delete_notification_setting(
            session,
            company_id=company,
            level=scope.value,
            entity_id=entity,
            event_type=event_type,
            channel=channel,
        )
    if not deleted:
        raise not_found(f"{event_type} {channel} setting of {scope.value}", entity)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- the delivery log ----------------------------------------------------------------------------


@router.get("/v1/notifications", response_model=schemas.DeliveryPage)
async def delivery_log(
    principal: Admin,
    deps: DepsDep,
    event_type: Annotated[SingleLine | None, Query(max_length=100)] = None,
    event_id: Annotated[SingleLine | None, Query(max_length=255)] = None,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    channel: Channel | None = None,
    recipient: Annotated[
        SingleLine | None,
        Query(max_length=255, description='e.g. "staff:<uuid>", "customer:7", "webhook:1"'),
    ] = None,
    subject_type: Literal["callback", "appointment"] | None = None,
    subject_id: Annotated[SingleLine | None, Query(max_length=64)] = None,
    since: Rfc3339 | None = None,
    until: Rfc3339 | None = None,
    before_id: Annotated[
        int | None, Query(gt=0, le=MAX_ID, description="the `next_before_id` of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    company_id: CompanyQuery = None,
) -> dict[str, Any]:
    """Every message the engine sent or tried to send, newest first: who, what, when, how it went."""
    company = company_of(principal, company_id)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise invalid(name, "needs a UTC offset (e.g. 2030-03-04T09:00:00+01:00)")
    async with deps.sessions() as session:
        items = await notification_log.list_deliveries(
            session,
            company_id=company,
            event_type=event_type,
            event_id=event_id,
            status=status_.value if status_ else None,
            channel=channel.value if channel else None,
            recipient=recipient,
            subject_type=subject_type,
            subject_id=subject_id,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit + 1,
        )
    page = items[:limit]
    return {"items": page, "next_before_id": page[-1].id if len(items) > limit else None}
