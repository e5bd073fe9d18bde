"""`callbacks keys …`: API keys, an operator command that works on the database directly."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli.output import JsonOption, emit, fail, table
from config import database_url_of, get_settings

# --- keys (operator: works on the database directly) ---------------------------------------------

keys_app = typer.Typer(
    help="API keys (operator command: works on the database directly).", no_args_is_help=True
)

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
    from store.db import create_engine, session_factory, transaction

    async def run() -> Any:
        engine = create_engine(database_url_of(get_settings()), pool_size=1)
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
        raise fail(f"--staff-id {staff_id!r} is not a UUID") from None

    async def work(session: Any) -> Any:
        return await create_key(session, name=name, role=role, company_id=company_id, staff_id=staff)

    try:
        created = _with_database(work)
    except InvalidKeyRequest as exc:
        raise fail(str(exc)) from None
    data = {**_key_dict(created.record), "key": created.secret}
    emit(
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
    emit(records, as_json, lambda rows: table(rows, KEY_COLUMNS))


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
        raise fail(f"no active key with id or prefix {key!r}")
    emit(_key_dict(revoked), as_json, lambda d: f"revoked key #{d['id']} ({d['prefix']}, {d['name']})")


# --- callbacks (over HTTP) -----------------------------------------------------------------------
