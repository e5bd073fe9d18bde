"""/v1/policies (admins set them, staff read the effective result), /v1/appointments/{id}/policy (a dry run)
and /v1/customers/{id}/quota.

A policy for another company's branch, service or staff member is answered 404 like a missing one, and a
config is validated before anything is written (every problem listed per key).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status

from api import schemas
from api.auth import Admin, PolicyReader, Reader
from api.deps import Deps, get_deps
from api.directory import ERASED_CUSTOMER, refuse_erased, scoped
from api.params import MAX_ID, EntityId, entity_id
from api.problems import ApiProblem, FieldError, not_found
from api.scoping import company_of, ensure_entities_of_company
from models.policies import (
    Level,
    ModificationType,
    PolicyConfigError,
    PolicyResult,
    PolicySubject,
    PolicyType,
)
from models.tables import Customer, PolicyConfiguration
from store import appointment_policies
from store.appointments import upcoming_appointments
from store.db import transaction
from store.hierarchy import UnknownTarget
from store.policies import delete_policy, set_policy
from store.policies import get_policy as stored_policy

router = APIRouter(tags=["policies"])

DepsDep = Annotated[Deps, Depends(get_deps)]


def _stored(row: PolicyConfiguration) -> dict[str, Any]:
    return {
        "id": row.id,
        "company_id": row.company_id,
        "scope": row.configurable_type,
        "scope_id": row.configurable_id,
        "policy_type": row.policy_type,
        "config": row.config,
    }


@router.get("/v1/policies/effective", response_model=schemas.EffectivePolicyOut)
async def effective_policy(
    principal: PolicyReader,
    deps: DepsDep,
    policy_type: PolicyType,
    branch_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    service_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    staff_id: uuid.UUID | None = None,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
) -> dict[str, Any]:
    """The merged policy for these entities, and which level supplied each key."""
    company = company_of(principal, company_id)
    await deps.policies.sync()  # an admin's own change, just made, shows
    async with deps.sessions() as session:
        await ensure_entities_of_company(session, company, branch_id, service_id, staff_id)
        merged = await deps.policies.resolve(
            PolicySubject(company_id=company, branch_id=branch_id, service_id=service_id, staff_id=staff_id),
            policy_type.value,
            session=session,
        )
    return {
        "policy_type": policy_type.value,
        "config": merged.config,
        "sources": {
            key: {"level": source.level, "entity_id": source.entity_id}
            for key, source in merged.sources.items()
        },
    }


@router.get("/v1/policies/{scope}/{scope_id}/{policy_type}", response_model=schemas.StoredPolicyOut)
async def get_policy(
    scope: Level,
    scope_id: EntityId,
    policy_type: PolicyType,
    principal: Admin,
    deps: DepsDep,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
) -> dict[str, Any]:
    company = company_of(principal, company_id)
    entity = entity_id(scope, scope_id)
    async with deps.sessions() as session:
        row = await stored_policy(session, company, scope.value, str(entity), policy_type.value)
    if row is None:
        raise not_found(f"{policy_type.value} policy of {scope.value}", entity)
    return _stored(row)


@router.put("/v1/policies/{scope}/{scope_id}/{policy_type}", response_model=schemas.StoredPolicyOut)
async def put_policy(
    scope: Level,
    scope_id: EntityId,
    policy_type: PolicyType,
    body: schemas.PolicyBody,
    principal: Admin,
    deps: DepsDep,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
) -> dict[str, Any]:
    """Create or replace the policy of one entity; every process's policy cache drops it on commit."""
    company = company_of(principal, company_id)
    entity = entity_id(scope, scope_id)
    try:
        async with transaction(deps.sessions) as session:
            stored = await set_policy(
                session,
                company_id=company,
                level=scope.value,
                entity_id=entity,
                policy_type=policy_type.value,
                config=body.config,
            )
    except PolicyConfigError as exc:
        errors = [_policy_field_error(problem) for problem in exc.problems]
        raise ApiProblem(
            422, str(exc), slug="invalid-policy", title="Invalid policy", errors=errors
        ) from None
    except UnknownTarget:
        raise not_found(scope.value, entity) from None
    return {
        "id": stored.id,
        "company_id": stored.company_id,
        "scope": stored.level,
        "scope_id": stored.entity_id,
        "policy_type": stored.policy_type,
        "config": stored.config,
    }


@router.delete("/v1/policies/{scope}/{scope_id}/{policy_type}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_policy(
    scope: Level,
    scope_id: EntityId,
    policy_type: PolicyType,
    principal: Admin,
    deps: DepsDep,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
) -> Response:
    company = company_of(principal, company_id)
    entity = entity_id(scope, scope_id)
    async with transaction(deps.sessions) as session:
        deleted = await delete_policy(
            session, company_id=company, level=scope.value, entity_id=entity, policy_type=policy_type.value
        )
    if not deleted:
        raise not_found(f"{policy_type.value} policy of {scope.value}", entity)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _policy_field_error(problem: str) -> FieldError:
    """`"hours_before: must be ≥ 0"` → field `config.hours_before`; the whole config is `config`."""
    where, _, message = problem.partition(":")
    if not message:
        return FieldError(field="config", message=problem)
    field = "config" if where.strip() in ("config", "") else f"config.{where.strip()}"
    return FieldError(field=field, message=message.strip())


# --- appointments and customers ------------------------------------------------------------------


@router.get("/v1/appointments/{appointment_id}/policy", response_model=PolicyResult, tags=["appointments"])
async def appointment_policy(
    appointment_id: int,
    action: Literal["cancel", "reschedule"],
    principal: Reader,
    deps: DepsDep,
) -> PolicyResult:
    """A dry run: would cancelling (rescheduling) this appointment now be allowed, and at what fee?"""
    if not 0 < appointment_id <= MAX_ID:
        raise not_found("appointment", appointment_id)
    async with deps.sessions() as session:
        try:
            return await appointment_policies.check_change(
                deps.policies,
                session,
                appointment_id=appointment_id,
                change=ModificationType(action),
                now=datetime.now(UTC),
                company_id=principal.scope(),
            )
        except appointment_policies.AppointmentNotFound:
            raise not_found("appointment", appointment_id) from None


@router.get("/v1/customers/{customer_id}/quota", tags=["appointments"], responses=ERASED_CUSTOMER)
async def customer_quota(customer_id: int, principal: Reader, deps: DepsDep) -> dict[str, Any]:
    """Cancellations left over the rolling 30 days (company policy) and, per upcoming appointment, the
    cancellations and reschedules its own policy still allows. 410 once the customer is erased."""
    if not 0 < customer_id <= MAX_ID:
        raise not_found("customer", customer_id)
    now = datetime.now(UTC)
    async with deps.sessions() as session:
        customer = await scoped(session, Customer, customer_id, principal, "customer")
        refuse_erased(customer)
        company_id = customer.company_id
        overall = await appointment_policies.remaining_modifications(
            deps.policies,
            session,
            subject=PolicySubject(company_id=company_id),
            customer_id=customer_id,
            change=ModificationType.CANCEL,
            now=now,
        )
        appointments = await upcoming_appointments(session, company_id, customer_id, now)
        upcoming = []
        for appointment in appointments:
            subject = PolicySubject(
                company_id=company_id,
                branch_id=appointment.branch_id,
                service_id=appointment.service_id,
                staff_id=appointment.staff_id,
            )
            cancels = await appointment_policies.remaining_modifications(
                deps.policies,
                session,
                subject=subject,
                customer_id=customer_id,
                change=ModificationType.CANCEL,
                now=now,
            )
            moves = await appointment_policies.remaining_modifications(
                deps.policies,
                session,
                subject=subject,
                customer_id=customer_id,
                change=ModificationType.RESCHEDULE,
                now=now,
                appointment_id=appointment.id,
            )
            upcoming.append(
                {
                    "appointment_id": appointment.id,
                    "starts_at": appointment.starts_at,
                    "cancellations_remaining": cancels.remaining_quota,
                    "reschedules_remaining": moves.remaining_quota,
                }
            )
    return {
        "customer_id": customer_id,
        "cancellations_remaining": overall.remaining_quota,
        "cancellation_policy": overall.model_dump(mode="json"),
        "appointments": upcoming,
    }
