"""`callbacks`: the operator commands (dev, worker, api, migrate, keys, schedules) and, from a terminal,
the staff actions, policies, notification settings and appointment changes.

Operator commands work on the local machine (database, processes). Everything else talks HTTP to a running
API (`CALLBACKS_API_URL`, default http://127.0.0.1:8000) with the key in `CALLBACKS_API_KEY`, so a terminal
has exactly the rights of its key, and the API stays the one place that checks them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from models.settings import get_settings

if TYPE_CHECKING:
    from starter.api_client import ApiClient

app = typer.Typer(
    help="The callback engine: run it, migrate it, and work callbacks from the terminal.",
    no_args_is_help=True,
)


@app.command()
def dev() -> None:
    """Run the whole local stack (PostgreSQL, Temporal + UI, worker) until Ctrl-C."""
    from localstack.stack import run_dev

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_dev(get_settings()))


@app.command()
def worker() -> None:
    """Run a Temporal worker for the callback task queue."""
    from worker import main

    main()


@app.command()
def migrate(revision: str = typer.Argument("head", help="Alembic revision to upgrade to")) -> None:
    """Upgrade the database (DATABASE_URL, or the local stack's) to the latest schema."""
    from localstack.stack import resolve_database_url
    from store.migrate import upgrade

    url = asyncio.run(resolve_database_url(get_settings()))
    upgrade(url, revision)
    typer.echo(f"database upgraded to {revision}")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="default: CALLBACKS_API_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="default: CALLBACKS_API_PORT or 8000")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from telemetry.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "starter.api:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        proxy_headers=True,
        # Our middleware writes one JSON line per request; keep uvicorn from installing its own format.
        log_config=None,
        access_log=False,
    )


# --- schedules (operator: talks to Temporal directly) ----------------------------------------------

schedules_app = typer.Typer(help="The Temporal Schedules of the periodic jobs.", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")


@schedules_app.command("sync")
def schedules_sync() -> None:
    """Create the schedules, or bring them in line with the current settings (workers do this at start)."""
    from starter.schedules import ensure_schedules
    from starter.temporal import connect

    async def run() -> None:
        client = await connect(get_settings())
        for item, created in await ensure_schedules(client, get_settings()):
            typer.echo(f"{item.schedule_id}: {'created' if created else 'updated'} ({item.description})")

    asyncio.run(run())


@schedules_app.command("trigger")
def schedules_trigger(schedule_id: str) -> None:
    """Run a schedule's job now (e.g. the reconciliation sweep after an import)."""
    from starter.temporal import connect

    async def run() -> None:
        client = await connect(get_settings())
        await client.get_schedule_handle(schedule_id).trigger()
        typer.echo(f"{schedule_id}: triggered")

    asyncio.run(run())


# --- output --------------------------------------------------------------------------------------

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain aligned table: readable in any terminal, grep-able, no extra dependency."""
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in cells)) for i, (_, title) in enumerate(columns)]
    lines = ["  ".join(title.ljust(widths[i]) for i, (_, title) in enumerate(columns)).rstrip()]
    lines += ["  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip() for line in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        return value[:16].replace("T", " ")  # timestamps to the minute
    return str(value)


def _fields(record: dict[str, Any], keys: Sequence[str]) -> str:
    width = max(len(key) for key in keys)
    return "\n".join(f"{key.ljust(width)}  {_cell(record.get(key))}" for key in keys)


def _emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else human(data))


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _client() -> ApiClient:
    from starter.api_client import ApiClient

    settings = get_settings()
    if not settings.api_key:
        raise _fail("set CALLBACKS_API_KEY to an API key (an admin creates one with `callbacks keys create`)")
    return ApiClient(settings.api_url, settings.api_key)


def _call(action: Callable[[ApiClient], Any]) -> Any:
    """Run one API call; an error ends the command with the API's own message and a non-zero code."""
    from starter.api_client import ApiError

    with _client() as client:
        try:
            return action(client)
        except ApiError as err:
            raise _fail(err.describe()) from None


# --- keys (operator: works on the database directly) ---------------------------------------------

keys_app = typer.Typer(
    help="API keys (operator command: works on the database directly).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

KEY_COLUMNS = [
    ("id", "ID"),
    ("prefix", "PREFIX"),
    ("name", "NAME"),
    ("role", "ROLE"),
    ("company_id", "COMPANY"),
    ("staff_id", "STAFF"),
    ("created_at", "CREATED"),
    ("last_used_at", "LAST USED"),
    ("revoked_at", "REVOKED"),
]


def _with_database(work: Callable[[Any], Any]) -> Any:
    """Run `work(session)` in one transaction against DATABASE_URL (or the local stack's database)."""
    from localstack.stack import resolve_database_url
    from store.db import create_engine, session_factory, transaction

    async def run() -> Any:
        engine = create_engine(await resolve_database_url(get_settings()), pool_size=1)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _key_dict(record: Any) -> dict[str, Any]:
    from dataclasses import asdict

    def text(value: Any) -> str:
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    plain: dict[str, Any] = json.loads(json.dumps(asdict(record), default=text))
    return plain


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="service, staff, admin or super_admin")],
    company_id: Annotated[int | None, typer.Option(help="the key's company (not for super_admin)")] = None,
    staff_id: Annotated[str | None, typer.Option(help="staff keys: the staff member they act as")] = None,
    name: Annotated[str, typer.Option(help="what the key is for")] = "cli",
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from store.api_keys import InvalidKeyRequest, create_key

    try:
        staff = uuid.UUID(staff_id) if staff_id else None
    except ValueError:
        raise _fail(f"--staff-id {staff_id!r} is not a UUID") from None

    async def work(session: Any) -> Any:
        return await create_key(session, name=name, role=role, company_id=company_id, staff_id=staff)

    try:
        created = _with_database(work)
    except InvalidKeyRequest as exc:
        raise _fail(str(exc)) from None
    data = {**_key_dict(created.record), "key": created.secret}
    _emit(
        data,
        as_json,
        lambda d: (
            f"{d['key']}\n\n{d['role']} key #{d['id']} ({d['prefix']}) created; "
            "it is shown only now, store it safely."
        ),
    )


@keys_app.command("list")
def keys_list(
    company_id: Annotated[int | None, typer.Option(help="only this company's keys")] = None,
    include_revoked: Annotated[bool, typer.Option("--include-revoked")] = False,
    as_json: JsonOption = False,
) -> None:
    """List keys (never their secrets)."""
    from store.api_keys import list_keys

    async def work(session: Any) -> Any:
        return await list_keys(session, company_id=company_id, include_revoked=include_revoked)

    records = [_key_dict(record) for record in _with_database(work)]
    _emit(records, as_json, lambda rows: _table(rows, KEY_COLUMNS))


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="the key's id or prefix")], as_json: JsonOption = False
) -> None:
    """Revoke a key; it stops working at once."""
    from store.api_keys import revoke_key

    async def work(session: Any) -> Any:
        return await revoke_key(session, key)

    revoked = _with_database(work)
    if revoked is None:
        raise _fail(f"no active key with id or prefix {key!r}")
    _emit(_key_dict(revoked), as_json, lambda d: f"revoked key #{d['id']} ({d['prefix']}, {d['name']})")


# --- callbacks (over HTTP) -----------------------------------------------------------------------

callbacks_app = typer.Typer(help="Create, list and work callbacks (through the API).", no_args_is_help=True)
app.add_typer(callbacks_app, name="callbacks")

LIST_COLUMNS = [
    ("id", "ID"),
    ("status", "STATUS"),
    ("priority", "PRIORITY"),
    ("customer_name", "CUSTOMER"),
    ("phone_number", "PHONE"),
    ("branch_name", "BRANCH"),
    ("assigned_to_name", "ASSIGNED TO"),
    ("expires_at", "DUE"),
    ("overdue", "OVERDUE"),
]
DETAIL_KEYS = [
    "id",
    "status",
    "priority",
    "customer_name",
    "phone_number",
    "email",
    "branch_name",
    "service_name",
    "assigned_to",
    "assigned_to_name",
    "created_at",
    "expires_at",
    "overdue",
    "contacted_at",
    "completed_at",
    "cancelled_at",
    "contact_attempts",
    "escalation_count",
    "notes",
    "completion_notes",
    "cancel_reason",
]


def _show_callback(record: dict[str, Any]) -> str:
    text = _fields(record, [key for key in DETAIL_KEYS if key in record])
    if record.get("events"):
        events = [
            {"seq": e["seq"], "at": e["at"], "type": e["type"], "actor": e["actor"]} for e in record["events"]
        ]
        text += "\n\n" + _table(events, [("seq", "#"), ("at", "AT"), ("type", "EVENT"), ("actor", "BY")])
    return text


def _action(callback_id: str, action: str, body: dict[str, Any] | None, as_json: bool) -> None:
    changed = _call(lambda client: client.act(callback_id, action, body))
    _emit(
        changed,
        as_json,
        lambda d: f"{d['id']}  {d['status']}  (assigned to {_cell(d.get('assigned_to_name'))})",
    )


@callbacks_app.command("create")
def callbacks_create(
    branch_id: Annotated[int, typer.Option(help="the branch the customer called")],
    name: Annotated[str, typer.Option(help="the customer's name")],
    phone: Annotated[str, typer.Option(help="international, or national in the branch's country")],
    service_id: Annotated[int | None, typer.Option()] = None,
    priority: Annotated[str, typer.Option(help="normal, high or urgent")] = "normal",
    email: Annotated[str | None, typer.Option()] = None,
    notes: Annotated[str | None, typer.Option()] = None,
    preferred_staff_id: Annotated[str | None, typer.Option()] = None,
    company_id: Annotated[int | None, typer.Option(help="super_admin keys only")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="the same key never creates twice")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ask for a callback; prints it once stored and assigned."""
    body = {
        "branch_id": branch_id,
        "service_id": service_id,
        "customer_name": name,
        "phone_number": phone,
        "priority": priority,
        "email": email,
        "notes": notes,
        "preferred_staff_id": preferred_staff_id,
        "company_id": company_id,
    }
    body = {key: value for key, value in body.items() if value is not None}
    created = _call(lambda client: client.create_callback(body, idempotency_key))
    _emit(
        created,
        as_json,
        lambda d: (
            f"{'created' if d['created'] else 'already there'}: {d['id']}  {d['status']}  "
            f"assigned to {_cell(d.get('assigned_to_name'))}, due {_cell(d['expires_at'])}"
        ),
    )


@callbacks_app.command("list")
def callbacks_list(
    status: Annotated[list[str] | None, typer.Option("--status", help="repeatable")] = None,
    priority: Annotated[list[str] | None, typer.Option("--priority", help="repeatable")] = None,
    branch_id: Annotated[int | None, typer.Option()] = None,
    assigned_to: Annotated[str | None, typer.Option(help="a staff id")] = None,
    overdue: Annotated[bool | None, typer.Option("--overdue/--not-overdue")] = None,
    q: Annotated[str | None, typer.Option("-q", "--search", help="part of the name or phone")] = None,
    sort: Annotated[
        str,
        typer.Option(
            help="id, customer_name, status, priority, branch, service, "
            "expires_at, created_at; '-' first for descending"
        ),
    ] = "-created_at",
    page: Annotated[int, typer.Option()] = 1,
    page_size: Annotated[int, typer.Option()] = 50,
    include_deleted: Annotated[bool, typer.Option("--include-deleted")] = False,
    as_json: JsonOption = False,
) -> None:
    """List callbacks, newest first by default."""
    params = {
        "status": status or [],
        "priority": priority or [],
        "branch_id": branch_id,
        "assigned_to": assigned_to,
        "overdue": None if overdue is None else str(overdue).lower(),
        "q": q,
        "sort": sort,
        "page": page,
        "page_size": page_size,
        "include_deleted": "true" if include_deleted else None,
    }
    found = _call(lambda client: client.list_callbacks(**params))
    _emit(
        found,
        as_json,
        lambda d: (
            _table(d["items"], LIST_COLUMNS)
            + f"\n\n{len(d['items'])} of {d['total']} (page {d['page']}, {d['page_size']} per page)"
        ),
    )


@callbacks_app.command("show")
def callbacks_show(callback_id: str, as_json: JsonOption = False) -> None:
    """One callback with its audit trail."""
    found = _call(lambda client: client.get_callback(callback_id))
    _emit(found, as_json, _show_callback)


@callbacks_app.command("assign")
def callbacks_assign(
    callback_id: str,
    staff_id: Annotated[str | None, typer.Option(help="default: the staff key's own staff member")] = None,
    as_json: JsonOption = False,
) -> None:
    _action(callback_id, "assign", {"staff_id": staff_id} if staff_id else {}, as_json)


@callbacks_app.command("contacted")
def callbacks_contacted(callback_id: str, as_json: JsonOption = False) -> None:
    """The customer was reached."""
    _action(callback_id, "contacted", None, as_json)


@callbacks_app.command("attempt")
def callbacks_attempt(
    callback_id: str,
    outcome: Annotated[str, typer.Option(help="no_answer, busy, voicemail or wrong_number")],
    notes: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """A failed attempt to reach the customer."""
    body = {"outcome": outcome, **({"notes": notes} if notes else {})}
    _action(callback_id, "attempts", body, as_json)


@callbacks_app.command("complete")
def callbacks_complete(
    callback_id: str,
    notes: Annotated[str, typer.Option(help="what came of the call (required)")],
    as_json: JsonOption = False,
) -> None:
    _action(callback_id, "complete", {"notes": notes}, as_json)


@callbacks_app.command("cancel")
def callbacks_cancel(
    callback_id: str, reason: Annotated[str | None, typer.Option()] = None, as_json: JsonOption = False
) -> None:
    _action(callback_id, "cancel", {"reason": reason} if reason else {}, as_json)


@callbacks_app.command("escalate")
def callbacks_escalate(
    callback_id: str,
    reason: Annotated[str, typer.Option()],
    details: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """Escalate by hand (to another staff member)."""
    body = {"reason": reason, **({"details": details} if details else {})}
    _action(callback_id, "escalate", body, as_json)


@callbacks_app.command("priority")
def callbacks_priority(
    callback_id: str,
    priority: Annotated[str, typer.Argument(help="normal, high or urgent")],
    as_json: JsonOption = False,
) -> None:
    """Change the priority (the SLA deadline is recomputed from the creation time)."""
    _action(callback_id, "priority", {"priority": priority}, as_json)


# --- policies and slots (over HTTP) --------------------------------------------------------------

policies_app = typer.Typer(help="Appointment and callback policies (through the API).", no_args_is_help=True)
app.add_typer(policies_app, name="policies")


def _show_policy(data: dict[str, Any]) -> str:
    sources = data.get("sources")
    rows = [
        {
            "key": key,
            "value": json.dumps(value),
            "from": f"{sources[key]['level']} {sources[key]['entity_id']}" if sources else None,
        }
        for key, value in data["config"].items()
    ]
    columns = [("key", "KEY"), ("value", "VALUE")] + ([("from", "FROM")] if sources else [])
    return _table(rows, columns)


@policies_app.command("set")
def policies_set(
    scope: Annotated[str, typer.Argument(help="company, branch, service or staff")],
    scope_id: str,
    policy_type: Annotated[str, typer.Argument(help="cancellation, reschedule or callback")],
    config: Annotated[
        str, typer.Argument(help='the config as JSON, e.g. \'{"hours_before": 24, "fee": 10}\'')
    ],
    as_json: JsonOption = False,
) -> None:
    """Create or replace one entity's policy."""
    try:
        parsed = json.loads(config)
    except ValueError as exc:
        raise _fail(f"the config is not JSON: {exc}") from None
    stored = _call(lambda client: client.put_policy(scope, scope_id, policy_type, parsed))
    _emit(stored, as_json, _show_policy)


@policies_app.command("show")
def policies_show(scope: str, scope_id: str, policy_type: str, as_json: JsonOption = False) -> None:
    """One entity's own policy (without what it inherits)."""
    found = _call(lambda client: client.get_policy(scope, scope_id, policy_type))
    _emit(found, as_json, _show_policy)


@policies_app.command("effective")
def policies_effective(
    policy_type: Annotated[str, typer.Argument(help="cancellation, reschedule or callback")],
    branch_id: Annotated[int | None, typer.Option()] = None,
    service_id: Annotated[int | None, typer.Option()] = None,
    staff_id: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """The merged policy for these entities, with the level that supplied each key."""
    found = _call(
        lambda client: client.effective_policy(
            policy_type, branch_id=branch_id, service_id=service_id, staff_id=staff_id
        )
    )
    _emit(found, as_json, _show_policy)


@app.command()
def slots(
    service_id: int,
    start: Annotated[str | None, typer.Option(help="window start, ISO 8601 with offset")] = None,
    end: Annotated[str | None, typer.Option(help="window end, ISO 8601 with offset")] = None,
    after: Annotated[
        str | None, typer.Option(help="without a window: the next slots from then (default now)")
    ] = None,
    limit: Annotated[int, typer.Option(help="without a window: how many")] = 5,
    time_zone: Annotated[str | None, typer.Option(help="IANA zone of the answer")] = None,
    as_json: JsonOption = False,
) -> None:
    """Free Cal.com slots of a service: in a window (--start/--end) or the next ones."""
    if (start is None) != (end is None):
        raise _fail("give both --start and --end, or neither")
    if start is not None:
        found = _call(lambda client: client.slots(service_id, start=start, end=end, time_zone=time_zone))
    else:
        found = _call(
            lambda client: client.next_slots(service_id, after=after, limit=limit, time_zone=time_zone)
        )
    _emit(
        found,
        as_json,
        lambda d: _table(d["slots"], [("start", "START"), ("end", "END")]) + f"\n({d['time_zone']})",
    )


# --- notifications (over HTTP, admin keys) -------------------------------------------------------

notifications_app = typer.Typer(
    help="Notification settings, the event catalogue and the delivery log (through the API; admin keys).",
    no_args_is_help=True,
)
app.add_typer(notifications_app, name="notifications")
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
    stored = _call(lambda client: client.put_notification_setting(scope, scope_id, event_type, channel, body))
    _emit(stored, as_json, lambda d: _table([d], SETTING_COLUMNS))


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
    found = _call(
        lambda client: client.notification_settings(
            scope=scope, scope_id=scope_id, event_type=event_type, channel=channel
        )
    )
    _emit(found, as_json, lambda rows: _table(rows, SETTING_COLUMNS))


@settings_app.command("delete")
def notification_settings_delete(scope: str, scope_id: str, event_type: str, channel: str) -> None:
    """Remove one entity's setting: it inherits from the level above again."""
    _call(lambda client: client.delete_notification_setting(scope, scope_id, event_type, channel))
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
    return _table(flat, EFFECTIVE_COLUMNS)


@settings_app.command("effective")
def notification_settings_effective(
    branch_id: Annotated[int | None, typer.Option()] = None,
    service_id: Annotated[int | None, typer.Option()] = None,
    staff_id: Annotated[str | None, typer.Option()] = None,
    event_type: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOption = False,
) -> None:
    """What applies to a message about these entities, and which level decided it."""
    found = _call(
        lambda client: client.effective_notifications(
            branch_id=branch_id, service_id=service_id, staff_id=staff_id, event_type=event_type
        )
    )
    _emit(found, as_json, _effective_rows)


@notifications_app.command("events")
def notification_events(as_json: JsonOption = False) -> None:
    """The event catalogue: what settings can name."""
    found = _call(lambda client: client.notification_events())
    columns = [
        ("event_type", "EVENT"),
        ("category", "CATEGORY"),
        ("label", "LABEL"),
        ("channels", "DEFAULT CHANNELS"),
        ("audience", "AUDIENCE"),
    ]
    _emit(
        found,
        as_json,
        lambda rows: _table(
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
    found = _call(
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
        text = _table(page["items"], DELIVERY_COLUMNS)
        if page.get("next_before_id"):
            text += f"\n\nmore: --before-id {page['next_before_id']}"
        return text

    _emit(found, as_json, human)


# --- appointments (over HTTP) --------------------------------------------------------------------

appointments_app = typer.Typer(
    help="Cancel and reschedule appointments (through the API).", no_args_is_help=True
)
app.add_typer(appointments_app, name="appointments")

IdempotencyOption = Annotated[
    str | None,
    typer.Option(help="the change's request id: resending the same key never changes anything twice"),
]


def _show_change(outcome: dict[str, Any]) -> str:
    policy = outcome.get("policy") or {}
    fee = f"{outcome.get('fee_charged')} {policy.get('currency', '')}".strip()
    verb = "cancelled" if outcome["change"] == "cancel" else "rescheduled"
    text = f"appointment {outcome['appointment_id']} {verb}, fee {fee}"
    if outcome["change"] == "reschedule":
        text += f", now {_cell(outcome.get('starts_at'))}–{_cell(outcome.get('ends_at'))[11:]}"
    return text + f"  (request {outcome['request_id']})"


@appointments_app.command("cancel")
def appointments_cancel(
    appointment_id: int,
    reason: Annotated[str | None, typer.Option()] = None,
    idempotency_key: IdempotencyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel under the appointment's policy; a denial exits non-zero with the reason."""
    body = {"reason": reason} if reason else {}
    outcome = _call(lambda client: client.change_appointment(appointment_id, "cancel", body, idempotency_key))
    _emit(outcome, as_json, _show_change)


@appointments_app.command("reschedule")
def appointments_reschedule(
    appointment_id: int,
    to: Annotated[str, typer.Option("--to", help="the new start, ISO 8601 with offset")],
    reason: Annotated[str | None, typer.Option()] = None,
    idempotency_key: IdempotencyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an appointment to a new start (it keeps its length)."""
    body = {"new_start": to, **({"reason": reason} if reason else {})}
    outcome = _call(
        lambda client: client.change_appointment(appointment_id, "reschedule", body, idempotency_key)
    )
    _emit(outcome, as_json, _show_change)


if __name__ == "__main__":
    app()
