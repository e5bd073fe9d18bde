"""Who is calling: Bearer API keys, roles, and the company every query and action is scoped to.

Tenancy is enforced by construction: routes never take a company from the caller except a super_admin's
explicit `company_id`; everything else is scoped to the key's company, and another company's object is
answered like a missing one (404), so a key never learns what exists elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import Deps, get_deps
from api.problems import ApiProblem, FieldError, invalid
from store import api_keys
from store.db import transaction
from telemetry import logs as log_context


class Role(StrEnum):
    SERVICE = "service"
    STAFF = "staff"
    ADMIN = "admin"
    SUPER_ADMIN = "super_admin"


ALL_ROLES = frozenset(Role)
CREATORS = frozenset({Role.SERVICE, Role.STAFF, Role.ADMIN, Role.SUPER_ADMIN})
WORKERS = frozenset({Role.STAFF, Role.ADMIN, Role.SUPER_ADMIN})
ADMINS = frozenset({Role.ADMIN, Role.SUPER_ADMIN})


@dataclass(frozen=True)
class Principal:
    key_id: int
    prefix: str
    role: Role
    company_id: int | None
    staff_id: uuid.UUID | None

    @property
    def is_super_admin(self) -> bool:
        return self.role is Role.SUPER_ADMIN

    @property
    def actor(self) -> str:
        """Recorded in the audit trail: a staff key acts as its staff member, other keys as themselves."""
        if self.staff_id is not None:
            return str(self.staff_id)
        return f"{self.role.value}-key:{self.prefix}"

    def scope(self, requested: int | None = None) -> int | None:
        """The company to filter by: the key's own; a super_admin's choice (None = every company)."""
        if self.is_super_admin:
            return requested
        return self.company_id

    def company_for_write(self, requested: int | None) -> int:
        """The company a new object belongs to; a super_admin must say which."""
        if self.is_super_admin:
            if requested is None:
                raise invalid("company_id", "required for a super_admin key")
            return requested
        assert self.company_id is not None
        if requested is not None and requested != self.company_id:
            # Naming another company is a question of rights, not of form: only a super_admin may.
            raise ApiProblem(
                403,
                "only a super_admin key names another company (leave company_id out)",
                slug="forbidden",
                errors=[FieldError(field="company_id", message="must be left out (the key's company)")],
            )
        return self.company_id


def principal_of(record: api_keys.KeyRecord) -> Principal:
    return Principal(
        key_id=record.id,
        prefix=record.prefix,
        role=Role(record.role),
        company_id=record.company_id,
        staff_id=record.staff_id,
    )


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cbk_…`")

UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="callbacks"'}


async def authenticate(
    request: Request,
    deps: Annotated[Deps, Depends(get_deps)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiProblem(
            401,
            "send an API key as `Authorization: Bearer <key>`",
            slug="unauthorized",
            headers=UNAUTHORIZED_HEADERS,
        )
    secret = credentials.credentials
    record = None
    if secret.isascii() and len(secret) <= 128:
        async with transaction(deps.sessions) as session:
            record = await api_keys.authenticate(session, secret, datetime.now(UTC))
    if record is None:
        raise ApiProblem(
            401, "the API key is unknown or revoked", slug="unauthorized", headers=UNAUTHORIZED_HEADERS
        )
    if not record.staff_active:
        # Deactivating a staff member stops their keys at once (no cache in between).
        raise ApiProblem(
            401,
            "the API key's staff member is deactivated",
            slug="unauthorized",
            headers=UNAUTHORIZED_HEADERS,
        )
    principal = principal_of(record)
    request.state.principal = principal
    log_context.bind(company_id=record.company_id)
    return principal


def require(roles: frozenset[Role], what: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets only `roles` through; `what` completes "a <role> key may not …"."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            raise ApiProblem(
                403,
                f"a {principal.role.value} key may not {what}",
                slug="forbidden",
            )
        return principal

    return check


Reader = Annotated[Principal, Depends(require(ALL_ROLES, "read"))]
Creator = Annotated[Principal, Depends(require(CREATORS, "create callbacks"))]
Worker = Annotated[Principal, Depends(require(WORKERS, "work callbacks"))]
Admin = Annotated[Principal, Depends(require(ADMINS, "do this (admin only)"))]
PolicyReader = Annotated[
    Principal, Depends(require(frozenset({Role.STAFF, Role.ADMIN, Role.SUPER_ADMIN}), "read policies"))
]
