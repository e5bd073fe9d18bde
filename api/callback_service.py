"""The callback operations behind both the JSON API and the staff console.

They live here, not in the routes, so that a button in the console and a call to `/v1/callbacks` run the
same checks, the same Update and the same refusal text: the console must never accept what the API
refuses, nor word a refusal differently. Every failure is an `ApiProblem`; the API renders it as
problem+json, the console as a message on the page.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.service import RPCError, RPCStatusCode

from activities.preparation import InvalidReferences
from api import schemas
from api.auth import ADMINS, Principal
from api.deps import Deps
from api.engine_errors import problem_for
from api.phones import default_region, to_e164
from api.problems import ApiProblem, FieldError, invalid, not_found
from api.ratelimit import retry_after_header
from models.callbacks import (
    CallbackStatus,
    NewCallback,
    StaffAction,
    StaffCommand,
)
from models.update_keys import KEY_REUSED, KEY_REUSED_MESSAGE
from rules.staff_actions import STAFF_ACTIONS
from rules.transitions import TransitionRefused, check_allowed
from starter.client import CallbackError, callback_id_for
from starter.deadlines import TemporalCallFailed
from starter.opening import join_stored, open_callback
from store import callback_queries as queries
from store import tenant_lookups
from store.callbacks import get_row
from telemetry import logs as log_context

BULK_CONCURRENCY = 8


def now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def key_reused(detail: str = KEY_REUSED_MESSAGE) -> ApiProblem:
    """A reused Idempotency-Key with another request: refused, never answered with the first outcome."""
    return ApiProblem(
        422,
        detail,
        slug="idempotency-key-reused",
        title="Idempotency-Key reused",
        errors=[FieldError(field="Idempotency-Key", message=detail)],
    )


def refusal(err: CallbackError) -> ApiProblem:
    if err.kind == "TransitionRefused":
        return ApiProblem(409, str(err), slug="transition-refused", title="Transition refused")
    if err.kind == "CallbackStopped":
        return ApiProblem(409, str(err), slug="callback-stopped", title="Callback stopped")
    if err.kind == "AlreadyTaken":
        return ApiProblem(409, str(err), slug="already-taken", title="Already taken")
    if err.kind == KEY_REUSED:
        return key_reused(str(err))
    if err.kind == "CallbackStuck":
        return ApiProblem(
            503, str(err), slug="callback-stuck", title="Callback stuck", headers={"Retry-After": "60"}
        )
    if err.kind == "InvalidStaff":
        return invalid("staff_id", str(err))
    if err.kind in ("InvalidCallback", "InvalidReference"):
        return ApiProblem(422, str(err), slug="invalid-callback", title="Invalid callback")
    return ApiProblem(409, str(err), slug="refused", title="Refused")


def may_read_deleted(principal: Principal) -> bool:
    """Soft-deleted callbacks are an admin's business (they deleted them, they may restore them)."""
    return principal.role in ADMINS


def check_include_deleted(principal: Principal, include_deleted: bool) -> None:
    if include_deleted and not may_read_deleted(principal):
        raise ApiProblem(
            403,
            f"a {principal.role.value} key may not read deleted callbacks (admin only)",
            slug="forbidden",
        )


async def load(deps: Deps, principal: Principal, callback_id: uuid.UUID, **kwargs: Any) -> dict[str, Any]:
    async with deps.sessions() as session:
        found = await queries.get_callback(session, callback_id, principal.scope(), now=now(), **kwargs)
    if found is None:
        raise not_found("callback", callback_id)
    log_context.bind(workflow_id=found["workflow_id"], company_id=found.get("company_id"))
    return found


async def detail(deps: Deps, principal: Principal, callback_id: uuid.UUID, **kwargs: Any) -> dict[str, Any]:
    """The row plus its escalations, failed attempts and audit trail (tenant-checked before the history)."""
    row = await load(deps, principal, callback_id, **kwargs)
    async with deps.sessions() as session:
        history = await queries.callback_history(session, callback_id)
    return {**row, **history}


async def act(
    deps: Deps,
    principal: Principal,
    callback_id: uuid.UUID,
    action: StaffAction,
    command: StaffCommand,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Run one staff action through the workflow; returns the row as it is after the Update.

    With an Idempotency-Key the action is an Update whose id derives from the key (and the API key that
    sent it): a retry, even after a timeout or once the action finished the callback, answers the first
    call's outcome and applies nothing twice. So the row's state is not checked first then: the first call
    may be what changed it."""
    row = await load(deps, principal, callback_id)
    if idempotency_key is None:
        try:
            check_allowed(action, CallbackStatus(row["status"]))
        except TransitionRefused as refused:
            raise ApiProblem(
                409, str(refused), slug="transition-refused", title="Transition refused"
            ) from None
    scoped_key = f"{principal.key_id}:{idempotency_key}" if idempotency_key is not None else None
    try:
        await deps.callbacks.act(row["workflow_id"], command, scoped_key)
    except CallbackError as err:
        raise refusal(err) from err
    except TemporalCallFailed as err:
        raise problem_for(err, "the action") from err
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # The workflow finished between the read and the Update (e.g. it just expired).
        current = await load(deps, principal, callback_id)
        raise ApiProblem(
            409,
            f"cannot {action.value.replace('_', ' ')}: the callback is {current['status']}",
            slug="transition-refused",
            title="Transition refused",
        ) from err
    return await load(deps, principal, callback_id)


def staff_for(principal: Principal, staff_id: uuid.UUID | None) -> uuid.UUID:
    chosen = staff_id or principal.staff_id
    if chosen is None:
        # The request is well-formed; this key just has no staff member to stand for (a staff key has).
        raise ApiProblem(
            403,
            "this key has no staff member of its own: name the staff member in staff_id",
            slug="staff-required",
            errors=[FieldError(field="staff_id", message="required for a key without a staff member")],
        )
    return chosen


def command_for(action: StaffAction, principal: Principal, body: BaseModel | None) -> StaffCommand:
    """The engine command for an action's body (api/action_bodies.py), read the same way for every action
    so the API and the console cannot drift: empty text means "not given", a `staff_id` left out is the
    key's own staff member, and the key is the actor."""
    command: type[StaffCommand] = STAFF_ACTIONS[action].command
    given = {
        key: None if value == "" else value for key, value in (body.model_dump() if body else {}).items()
    }
    if "staff_id" in command.model_fields and given.get("staff_id") is None:
        given["staff_id"] = staff_for(principal, None)
    try:
        return command.model_validate({**given, "actor": principal.actor})
    except ValidationError as exc:
        raise validation_problem(exc) from None


def validation_problem(exc: ValidationError) -> ApiProblem:
    errors = [
        FieldError(field=".".join(map(str, e["loc"])) or "body", message=e["msg"]) for e in exc.errors()
    ]
    return ApiProblem(422, str(exc), slug="validation-error", errors=errors)


async def bulk(
    deps: Deps,
    principal: Principal,
    ids: list[uuid.UUID],
    action: StaffAction,
    command: Callable[[], StaffCommand],
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """One result per id; a refused or unknown callback does not stop the others. An Idempotency-Key
    applies to each callback's action (Update ids are per workflow)."""
    if len(ids) > deps.settings.api_bulk_max_ids:
        raise invalid("ids", f"at most {deps.settings.api_bulk_max_ids} ids per request")
    async with deps.sessions() as session:
        known = await queries.existing_ids(session, ids, principal.scope())
    gate = asyncio.Semaphore(BULK_CONCURRENCY)

    async def one(callback_id: uuid.UUID) -> schemas.BulkItemResult:
        if callback_id not in known:
            problem = not_found("callback", callback_id)
        else:
            async with gate:
                try:
                    row = await act(deps, principal, callback_id, action, command(), idempotency_key)
                    return schemas.BulkItemResult(id=callback_id, ok=True, status=row["status"])
                except ApiProblem as caught:
                    problem = caught
        return schemas.BulkItemResult(
            id=callback_id,
            ok=False,
            error={"status": problem.status, "title": problem.title, "detail": problem.detail},
        )

    results = await asyncio.gather(*(one(callback_id) for callback_id in ids))
    succeeded = sum(1 for result in results if result.ok)
    return {"succeeded": succeeded, "failed": len(results) - succeeded, "results": results}


async def normalize_phone(deps: Deps, company_id: int | None, branch_id: int, raw: str) -> str:
    """The number in E.164 as creation will store it (national numbers read in the branch's country)."""
    async with deps.sessions() as session:
        found = await tenant_lookups.branch_phone_context(session, branch_id, company_id)
    if found is None:
        raise invalid("branch_id", f"no such branch in company {company_id}")
    try:
        return to_e164(raw, default_region(*found))
    except ValueError as exc:
        raise invalid("phone_number", str(exc)) from None


@dataclass(frozen=True)
class Created:
    row: dict[str, Any]
    created: bool


def invalid_references(refused: InvalidReferences) -> ApiProblem:
    problems = refused.errors
    errors = [FieldError(field=p.split(":", 1)[0], message=p.split(":", 1)[1].strip()) for p in problems]
    return ApiProblem(
        422, "; ".join(problems), slug="validation-error", title="Invalid request", errors=errors
    )


async def create(
    deps: Deps,
    principal: Principal,
    body: schemas.CreateCallback,
    idempotency_key: str | None,
    *,
    company_id: int,
) -> Created:
    """Validate against the database, spend the key's rate budget, start the workflow, read the row back."""
    # A retry whose callback already exists starts nothing, so it does not spend the key's budget.
    existing = None
    if idempotency_key is not None:
        async with deps.sessions() as session:
            existing = await get_row(session, callback_id_for(company_id, idempotency_key))
    wait = 0.0 if existing is not None else deps.create_limits.take(principal.key_id)
    if wait > 0:
        raise ApiProblem(
            429,
            f"this key may create {deps.settings.api_create_rate_per_minute:g} callbacks per minute "
            f"(bursts of {deps.settings.api_create_burst}); try again in {retry_after_header(wait)} s",
            slug="rate-limited",
            headers={"Retry-After": retry_after_header(wait)},
        )
    phone = await normalize_phone(deps, company_id, body.branch_id, body.phone_number)
    try:
        request = NewCallback(
            company_id=company_id,
            branch_id=body.branch_id,
            service_id=body.service_id,
            customer_id=body.customer_id,
            customer_name=body.customer_name,
            phone_number=phone,
            email=body.email,
            priority=body.priority,
            preferred_staff_id=body.preferred_staff_id,
            preferred_time_window=body.preferred_time_window.model_dump(mode="json")
            if body.preferred_time_window
            else None,
            notes=body.notes or None,
            metadata=body.metadata,
        )
    except ValidationError as exc:
        raise validation_problem(exc) from None
    # The same one statement as the reference check, and the workflow needs no prepare step of its own.
    try:
        prepared = await deps.preparer.prepare(request, at=datetime.now(UTC))
    except InvalidReferences as refused:
        raise invalid_references(refused) from None
    try:
        if existing is not None and idempotency_key is not None:  # its workflow may predate tenant ids
            result = await join_stored(
                deps.callbacks, deps.row_states, existing, request, idempotency_key, prepared
            )
        else:  # the API writes the first step itself, then starts the workflow from it
            result = await open_callback(deps.opener, deps.callbacks, request, prepared, idempotency_key)
    except InvalidReferences as refused:  # a reference deleted since the preparation
        raise invalid_references(refused) from None
    except CallbackError as err:
        raise refusal(err) from err
    except TemporalCallFailed as err:
        raise problem_for(err, "the callback", "may still be created") from err
    if not result.created and result.state.request != request:
        raise key_reused("this Idempotency-Key was already used for a different request")
    row = await load(deps, principal, result.state.id, include_deleted=True)
    return Created(row, result.created)
