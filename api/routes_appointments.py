"""POST /v1/appointments/{id}/cancel and /reschedule: a change request to the appointment's
`AppointmentWorkflow` (one per appointment, requests applied in order), answered with its outcome.

The `Idempotency-Key` header is the change's request id, so a client that lost the answer may send the same
request again and gets the stored outcome instead of a second cancellation and a second fee; the same key
with a different change (another time, another kind of change, another appointment) is a 422 that says so. The
request is dated when it arrives here (`requested_at`): the policy and the fee are decided for that
instant, whenever the engine gets to it and however often it is resent. The key's actor is recorded as
`modified_by` (a staff key as its staff member). Every "no" is a problem the caller can act on: a policy
denial says why and what it would cost (409), a change Cal.com refused carries Cal.com's message, a
Cal.com outage answers 503 with `Retry-After`, and an engine that does not answer in time 504 (busy 429,
unreachable 503; api/engine_errors.py), after each of which the same key is safe to resend.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query

from api import schemas
from api.auth import CREATORS, Principal, Role, require
from api.deps import Deps, get_deps
from api.params import MAX_ID
from api.problems import ApiProblem, FieldError, invalid, not_found
from api.scoping import company_of
from models.appointments import (
    REQUEST_ID_PATTERN,
    Actor,
    ActorType,
    AppointmentChangeOutcome,
    AppointmentChangeRequest,
    ChangeStatus,
)
from models.policies import ModificationType
from starter.appointments import REQUEST_ID_REUSED, AppointmentChangeError

router = APIRouter(prefix="/v1/appointments", tags=["appointments"])

DepsDep = Annotated[Deps, Depends(get_deps)]
Changer = Annotated[Principal, Depends(require(CREATORS, "change appointments"))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="the change's request id: the same key answers with the same outcome and changes "
        "nothing twice (letters, digits and . _ : -, at most 64)",
        json_schema_extra={"pattern": REQUEST_ID_PATTERN},
    ),
]
# How long a client should wait before resending after Cal.com could not be reached.
CALCOM_RETRY_AFTER_SECONDS = 60
ACTOR_TYPES = {
    Role.SERVICE: ActorType.SERVICE,
    Role.STAFF: ActorType.STAFF,
    Role.ADMIN: ActorType.ADMIN,
    Role.SUPER_ADMIN: ActorType.ADMIN,
}


def _actor(principal: Principal) -> Actor:
    """Staff keys act as their staff member; other keys as themselves (role and key prefix)."""
    return Actor(type=ACTOR_TYPES[principal.role], id=principal.actor[:64])


def _request_id(key: str | None) -> str:
    if key is None:
        return uuid.uuid4().hex
    if not re.fullmatch(REQUEST_ID_PATTERN, key):
        raise ApiProblem(
            422,
            "Idempotency-Key: 1 to 64 letters, digits and . _ : - (starting with a letter or digit)",
            slug="validation-error",
            title="Invalid request",
            errors=[FieldError(field="Idempotency-Key", message="1 to 64 letters, digits and . _ : -")],
        )
    return key


def _answer(outcome: AppointmentChangeOutcome, appointment_id: int, moving: bool) -> AppointmentChangeOutcome:
    """The outcome as HTTP: applied → 200; every other status → its problem."""
    if outcome.status is ChangeStatus.APPLIED:
        return outcome
    if outcome.status is ChangeStatus.NOT_FOUND:
        raise not_found("appointment", appointment_id)
    extra: dict[str, Any] = {"request_id": outcome.request_id, "change": outcome.change.value}
    if outcome.status is ChangeStatus.DENIED:
        policy = outcome.policy
        assert policy is not None
        extra.update(
            reason=policy.reason,
            fee=str(policy.fee),
            currency=policy.currency,
            hours_notice=policy.hours_notice,
            remaining_quota=policy.remaining_quota,
            sources=policy.model_dump(mode="json")["sources"],
        )
        raise ApiProblem(
            409,
            f"the {outcome.change.value} is not allowed: {policy.reason}",
            slug="change-denied",
            title="Change denied by policy",
            extra=extra,
        )
    extra.update(reason=outcome.reason, error_type=outcome.error_type)
    if outcome.error_type == "CalcomBadRequest":
        # Cal.com found the request itself wrong (for a reschedule: a time the calendar does not offer).
        field = "new_start" if moving else "body"
        raise ApiProblem(
            422,
            outcome.reason,
            slug="calcom-refused",
            title="Refused by Cal.com",
            errors=[FieldError(field=field, message=outcome.reason or "refused by Cal.com")],
            extra=extra,
        )
    slug = "calcom-refused" if outcome.error_type else "change-refused"
    title = "Refused by Cal.com" if outcome.error_type else "Change refused"
    raise ApiProblem(409, outcome.reason, slug=slug, title=title, extra=extra)


async def _submit(deps: Deps, request: AppointmentChangeRequest) -> AppointmentChangeOutcome:
    try:
        outcome = await deps.appointments.submit(request)
    except AppointmentChangeError as err:
        if err.kind == REQUEST_ID_REUSED:
            raise ApiProblem(
                422,
                str(err),
                slug="idempotency-key-reused",
                title="Idempotency-Key reused",
                errors=[
                    FieldError(
                        field="Idempotency-Key",
                        message="already used for a different change; use a new key for this one",
                    )
                ],
            ) from None
        if err.kind == "CalcomUnavailable":
            raise ApiProblem(
                503,
                f"{err}; send the same request (same Idempotency-Key) again later",
                slug="calcom-unavailable",
                title="Cal.com unavailable",
                headers={"Retry-After": str(CALCOM_RETRY_AFTER_SECONDS)},
            ) from None
        raise
    return _answer(outcome, request.appointment_id, request.change is ModificationType.RESCHEDULE)


def _appointment_id(appointment_id: int) -> int:
    if not 0 < appointment_id <= MAX_ID:
        raise not_found("appointment", appointment_id)
    return appointment_id


@router.post("/{appointment_id}/cancel", response_model=AppointmentChangeOutcome)
async def cancel_appointment(
    appointment_id: int,
    principal: Changer,
    deps: DepsDep,
    body: schemas.CancelAppointmentBody | None = None,
    idempotency_key: IdempotencyKey = None,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
) -> AppointmentChangeOutcome:
    """Cancel under the appointment's policy (the fee it charges is in the answer), on Cal.com too when
    the appointment is booked there."""
    requested_at = datetime.now(UTC)
    request = AppointmentChangeRequest(
        request_id=_request_id(idempotency_key),
        company_id=company_of(principal, company_id),
        appointment_id=_appointment_id(appointment_id),
        change=ModificationType.CANCEL,
        reason=(body.reason or None) if body else None,
        modified_by=_actor(principal),
        requested_at=requested_at,
    )
    return await _submit(deps, request)


@router.post("/{appointment_id}/reschedule", response_model=AppointmentChangeOutcome)
async def reschedule_appointment(
    appointment_id: int,
    body: schemas.RescheduleAppointmentBody,
    principal: Changer,
    deps: DepsDep,
    idempotency_key: IdempotencyKey = None,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
) -> AppointmentChangeOutcome:
    """Move the appointment to `new_start` (it keeps its length) under its reschedule policy."""
    requested_at = datetime.now(UTC)
    if body.new_start <= requested_at:
        raise invalid("new_start", "must be in the future")
    request = AppointmentChangeRequest(
        request_id=_request_id(idempotency_key),
        company_id=company_of(principal, company_id),
        appointment_id=_appointment_id(appointment_id),
        change=ModificationType.RESCHEDULE,
        new_start=body.new_start,
        reason=body.reason or None,
        modified_by=_actor(principal),
        requested_at=requested_at,
    )
    return await _submit(deps, request)
