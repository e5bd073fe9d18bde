"""/v1/keys: a company's admin hands out API keys without an operator's shell.

An admin creates `service`, `staff` (bound to an active staff member of the company) and `admin` keys
for its own company, lists them and revokes them; a super_admin does the same for any company (naming
`company_id`). `super_admin` keys themselves are only made by an operator (`callbacks keys create`).
The secret is answered once and stored only as a hash (store/api_keys.py).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from api.auth import Admin
from api.directory import CompanyFilter, DepsDep, IntId, company_for_write
from api.params import MAX_ID, QueryBool
from api.problems import ApiProblem, invalid, not_found
from api.schemas import Body
from api.text import RequiredLine
from store import api_keys
from store.db import transaction

router = APIRouter(prefix="/v1/keys", tags=["directory"])


class KeyCreate(Body):
    role: Literal["service", "staff", "admin"]
    name: RequiredLine = Field(default="api", max_length=255, description="what the key is for")
    staff_id: uuid.UUID | None = Field(default=None, description="staff keys: the staff member they act as")
    company_id: int | None = Field(default=None, gt=0, le=MAX_ID, description="super_admin keys only")


class KeyOut(BaseModel):
    id: int
    name: str
    role: str
    company_id: int | None
    staff_id: uuid.UUID | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedKeyOut(KeyOut):
    key: str = Field(description="the secret: shown once, send it as `Authorization: Bearer <key>`")


def _out(record: api_keys.KeyRecord) -> dict[str, Any]:
    return KeyOut.model_validate(asdict(record)).model_dump()


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CreatedKeyOut)
async def create_key(body: KeyCreate, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    async with transaction(deps.sessions) as session:
        company = await company_for_write(session, principal, body.company_id)
        try:
            created = await api_keys.create_key(
                session, name=body.name, role=body.role, company_id=company, staff_id=body.staff_id
            )
        except api_keys.InvalidKeyRequest as exc:
            field = "staff_id" if body.role == "staff" or body.staff_id else "role"
            raise invalid(field, str(exc)) from None
    return {**_out(created.record), "key": created.secret}


@router.get("", response_model=list[KeyOut])
async def list_keys(
    principal: Admin, deps: DepsDep, include_revoked: QueryBool = False, company_id: CompanyFilter = None
) -> list[dict[str, Any]]:
    """The company's keys (never their secrets); a super_admin sees every company's, or `company_id`'s."""
    async with deps.sessions() as session:
        records = await api_keys.list_keys(
            session, company_id=principal.scope(company_id), include_revoked=include_revoked
        )
    return [_out(record) for record in records]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: IntId, principal: Admin, deps: DepsDep) -> Response:
    """Revoke at once: the next request with the key is answered 401. A key does not revoke itself (409):
    revoke it with another admin key, or `callbacks keys revoke` (so no admin locks itself out by mistake)."""
    if key_id == principal.key_id:
        raise ApiProblem(
            409, "a key cannot revoke itself: use another admin key", slug="own-key", title="Conflict"
        )
    async with transaction(deps.sessions) as session:
        if await api_keys.revoke_by_id(session, key_id, principal.scope()) is None:
            raise not_found("key", key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
