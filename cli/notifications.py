"""`callbacks notifications …`: notification settings, the event catalogue and the delivery log."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.output import JsonOption, call, emit, table

notifications_app = typer.Typer(
    help="Notification settings, the event catalogue and the delivery log (through the API; admin keys).",
    no_args_is_help=True,
)
settings_app = typer.Typer(help="Who hears of which event on which channel.", no_args_is_help=True)
notifications_app.add_typer(settings_app, name="settings")

SETTING_COLUMNS = [
    ("event_type", "EVENT"),
    ("channel", "CHANNEL"),
    ("scope", "SCOPE"),
    ("scope_id", "SCOPE ID"),
    ("is_enabled", "ON"),
    ("fallback_channel", "FALLBACK"),
    ("retry_count", "RETRIES"),
    ("retry_delay_minutes", "DELAY MIN"),
    ("template_override", "TEMPLATE"),
]
EFFECTIVE_COLUMNS = [
    ("event_type", "EVENT"),
    ("channel", "CHANNEL"),
    ("enabled", "ON"),
    ("enabled_from", "FROM"),
    ("fallback_channel", "FALLBACK"),
    ("retry_count", "RETRIES"),
    ("retry_delay_minutes", "DELAY MIN"),
    ("retry_from", "RETRIES FROM"),
]
DELIVERY_COLUMNS = [
    ("id", "ID"),
    ("created_at", "AT"),
    ("event_type", "EVENT"),
    ("recipient", "RECIPIENT"),
    ("channel", "CHANNEL"),
    ("address", "ADDRESS"),
    ("status", "STATUS"),
    ("attempts", "ATTEMPTS"),
    ("sent_at", "SENT"),
    ("last_error", "LAST ERROR"),
]


@settings_app.command("set")
def notification_settings_set(
    scope: Annotated[str, typer.Argument(help="company, branch, service or staff")],
    scope_id: str,
    event_type: Annotated[str, typer.Argument(help="e.g. callback.escalated (see `notifications events`)")],
    channel: Annotated[str, typer.Argument(help="email, sms or webhook")],
    enabled: Annotated[bool, typer.Option("--enable/--disable")] = True,
    fallback: Annotated[
        str | None, typer.Option(help="channel to use when this one is off or unreachable")
    ] = None,
    retry_count: Annotated[int | None, typer.Option(help="default: the engine's")] = None,
    retry_delay_minutes: Annotated[int | None, typer.Option(help="default: the engine's")] = None,
    template: Annotated[str | None, typer.Option(help="a Jinja template for the summary line")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create or replace one entity's setting of one event on one channel."""
    body = {
        "is_enabled": enabled,
        "fallback_channel": fallback,
        "retry_count": retry_count,
        "retry_delay_minutes": retry_delay_minutes,
        "template_override": template,
    }
    body = {key: value for key, value in body.items() if value is not None}
    stored = call(lambda client: client.put_notification_setting(scope, scope_id, event_type, channel, body))
    emit(stored, as_json, lambda d: table([d], SETTING_COLUMNS))


@settings_app.command("show")
def notification_settings_show(
    scope: Annotated[
        str | None, typer.Option(help="only this level: company, branch, service, staff")
    ] = None,
    scope_id: Annotated[str | None, typer.Option(help="with --scope: only this entity")] = None,
    event_type: Annotated[str | None, typer.Option()] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """The stored settings (each level's own, without what it inherits)."""
    found = call(
        lambda client: client.notification_settings(
            scope=scope, scope_id=scope_id, event_type=event_type, channel=channel
        )
    )
    emit(found, as_json, lambda rows: table(rows, SETTING_COLUMNS))


@settings_app.command("delete")
def notification_settings_delete(scope: str, scope_id: str, event_type: str, channel: str) -> None:
    """Remove one entity's setting: it inherits from the level above again."""
    call(lambda client: client.delete_notification_setting(scope, scope_id, event_type, channel))
    typer.echo(f"deleted the {event_type} {channel} setting of {scope} {scope_id}")


def _effective_rows(rows: list[dict[str, Any]]) -> str:
    flat = [
        {
            **row,
            "enabled_from": row["sources"].get("is_enabled"),
            "retry_from": row["sources"].get("retry_count"),
        }
        for row in rows
    ]
    return table(flat, EFFECTIVE_COLUMNS)


@settings_app.command("effective")
def notification_settings_effective(
    branch_id: Annotated[int | None, typer.Option()] = None,
    service_id: Annotated[int | None, typer.Option()] = None,
    staff_id: Annotated[str | None, typer.Option()] = None,
    event_type: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """What applies to a message about these entities, and which level decided it."""
    found = call(
        lambda client: client.effective_notifications(
            branch_id=branch_id, service_id=service_id, staff_id=staff_id, event_type=event_type
        )
    )
    emit(found, as_json, _effective_rows)


@notifications_app.command("events")
def notification_events(as_json: JsonOption = False) -> None:
    """The event catalogue: what settings can name."""
    found = call(lambda client: client.notification_events())
    columns = [
        ("event_type", "EVENT"),
        ("category", "CATEGORY"),
        ("label", "LABEL"),
        ("channels", "DEFAULT CHANNELS"),
        ("audience", "AUDIENCE"),
    ]
    emit(
        found,
        as_json,
        lambda rows: table(
            [
                {**row, "channels": ",".join(row["default_channels"]), "audience": ",".join(row["audience"])}
                for row in rows
            ],
            columns,
        ),
    )


@notifications_app.command("log")
def notifications_log(
    event_type: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="pending, sending, sent or failed")] = None,
    channel: Annotated[str | None, typer.Option()] = None,
    recipient: Annotated[str | None, typer.Option(help='e.g. "customer:7", "staff:<uuid>"')] = None,
    subject_type: Annotated[str | None, typer.Option(help="callback or appointment")] = None,
    subject_id: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
    before_id: Annotated[
        int | None, typer.Option(help="the next page: the id the last page ended at")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The delivery log, newest first: who was told what, on which channel, and how it went."""
    found = call(
        lambda client: client.deliveries(
            event_type=event_type,
            status=status,
            channel=channel,
            recipient=recipient,
            subject_type=subject_type,
            subject_id=subject_id,
            limit=limit,
            before_id=before_id,
        )
    )

    def human(page: dict[str, Any]) -> str:
        text = table(page["items"], DELIVERY_COLUMNS)
        if page.get("next_before_id"):
            text += f"\n\nmore: --before-id {page['next_before_id']}"
        return text

    emit(found, as_json, human)


# --- appointments (over HTTP) --------------------------------------------------------------------
