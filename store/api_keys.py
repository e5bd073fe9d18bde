"""API keys: created here (the secret is returned once and never stored), looked up by their hash.

A key looks like `cbk_<prefix>_<secret>`. Only the SHA-256 of the whole key is stored: the key has 256 bits
of randomness, so a plain fast hash is enough (no password stretching is needed for a non-guessable
secret), and the lookup is one indexed equality. The prefix is stored in clear so that operators can tell
keys apart in listings and logs without seeing the secret.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import API_KEY_ROLES, ApiKey, Company, Staff

KEY_SCHEME = "cbk"
# Writing `last_used_at` on every request would turn every read into a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidKeyRequest(ValueError):
    """A key that cannot be created as asked (unknown role, company or staff member)."""


@dataclass(frozen=True)
class KeyRecord:
    id: int
    name: str
    role: str
    company_id: int | None
    staff_id: uuid.UUID | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    # False for a staff key whose staff member was deactivated: such a key opens nothing.
    staff_active: bool = True


@dataclass(frozen=True)
class NewKey:
    record: KeyRecord
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _record(row: ApiKey, staff_active: bool | None = True) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        name=row.name,
        role=row.role,
        company_id=row.company_id,
        staff_id=row.staff_id,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        staff_active=staff_active is not False,
    )


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    role: str,
    company_id: int | None,
    staff_id: uuid.UUID | None = None,
) -> NewKey:
    if role not in API_KEY_ROLES:
        raise InvalidKeyRequest(f"unknown role {role!r} (allowed: {', '.join(API_KEY_ROLES)})")
    if role == "super_admin":
        if company_id is not None or staff_id is not None:
            raise InvalidKeyRequest("a super_admin key belongs to no company and no staff member")
    else:
        if company_id is None:
            raise InvalidKeyRequest(f"a {role} key needs a company")
        if await session.get(Company, company_id) is None:
            raise InvalidKeyRequest(f"company {company_id} does not exist")
    if role == "staff":
        if staff_id is None:
            raise InvalidKeyRequest("a staff key is bound to a staff member: give the staff id")
        staff = await session.get(Staff, staff_id)
        if staff is None or staff.company_id != company_id:
            raise InvalidKeyRequest(f"staff {staff_id} is not a staff member of company {company_id}")
        if not staff.is_active:
            raise InvalidKeyRequest(f"staff {staff_id} is deactivated")
    elif staff_id is not None:
        raise InvalidKeyRequest("only staff keys are bound to a staff member")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name,
        role=role,
        company_id=company_id,
        staff_id=staff_id,
        prefix=prefix,
        key_hash=hash_key(secret),
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return NewKey(_record(row), secret)


async def authenticate(session: AsyncSession, secret: str, now: datetime) -> KeyRecord | None:
    """The active key with this secret, or None (unknown and revoked keys look the same)."""
    found = (
        await session.execute(
            _with_staff().where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None))
        )
    ).first()
    if found is None:
        return None
    row, staff_active = found
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        await session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return _record(row, staff_active)


def _with_staff() -> Select[ApiKey, bool]:
    """The key and whether its staff member (if it has one) is active, in the same query."""
    return select(ApiKey, Staff.is_active).outerjoin(Staff, Staff.id == ApiKey.staff_id)


async def get_active(session: AsyncSession, key_id: int) -> KeyRecord | None:
    """The key behind a console session, re-read on every request so that revoking it ends the session."""
    found = (
        await session.execute(_with_staff().where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)))
    ).first()
    return _record(found[0], found[1]) if found is not None else None


async def list_keys(
    session: AsyncSession, *, company_id: int | None = None, include_revoked: bool = False
) -> list[KeyRecord]:
    query = select(ApiKey).order_by(ApiKey.id)
    if company_id is not None:
        query = query.where(ApiKey.company_id == company_id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [_record(row) for row in await session.scalars(query)]


async def revoke_key(session: AsyncSession, key: str) -> KeyRecord | None:
    """Revoke by id or by prefix; None when no active key matches. Revoking is immediate (no cache)."""
    condition = ApiKey.prefix == key
    if key.isdigit():
        condition = or_(condition, ApiKey.id == int(key))
    row = await session.scalar(
        update(ApiKey)
        .where(condition, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(ApiKey)
    )
    return _record(row) if row is not None else None


async def revoke_by_id(session: AsyncSession, key_id: int, company_id: int | None) -> KeyRecord | None:
    """Revoke one key of the company (any company for None); None when no such active key is there."""
    conditions = [ApiKey.id == key_id, ApiKey.revoked_at.is_(None)]
    if company_id is not None:
        conditions.append(ApiKey.company_id == company_id)
    row = await session.scalar(
        update(ApiKey).where(*conditions).values(revoked_at=func.now()).returning(ApiKey)
    )
    return _record(row) if row is not None else None
