"""/v1/callbacks: create, list, detail, summary, the staff actions, bulk actions, soft delete and restore.

Reads come from the read model (`callback_requests`); every change goes through the callback's workflow
as an Update, which answers only after the change is in PostgreSQL, so the row re-read for the response
already shows it. A refused transition is caught before Temporal is asked when the row already tells (a
finished callback's workflow is closed and could not answer anyway).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status
from pydantic import ValidationError
from sqlalchemy import select
from temporalio.service import RPCError, RPCStatusCode

from models.callbacks import (
    Assign,
    CallbackStatus,
    Cancel,
    ChangePriority,
    Complete,
    Escalate,
    MarkContacted,
    NewCallback,
    Priority,
    RecordAttempt,
    StaffAction,
    callback_workflow_id,
)
from models.tables import Branch, CallbackRequest, Company
from rules.transitions import TransitionRefused, check_allowed
from starter.api import schemas
from starter.api.auth import Admin, Creator, Principal, Reader, Worker
from starter.api.deps import Deps, get_deps
from starter.api.phones import default_region, to_e164
from starter.api.problems import ApiProblem, FieldError, invalid, not_found
from starter.api.ratelimit import retry_after_header
from starter.client import CallbackError, StaffCommand, callback_id_for
from store import callback_queries as queries
from store.callbacks import reference_errors
from store.db import transaction
from telemetry import logs as log_context

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])
# Included before `router`: `/bulk/assign` must not be taken for `/{callback_id}/assign`.
bulk_router = APIRouter(prefix="/v1/callbacks/bulk", tags=["callbacks"])

DepsDep = Annotated[Deps, Depends(get_deps)]
MAX_ID = 2**63 - 1
SORT_PATTERN = "^-?(" + "|".join(queries.SORT_KEYS) + ")$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _refusal(err: CallbackError) -> ApiProblem:
    if err.kind == "TransitionRefused":
        return ApiProblem(409, str(err), slug="transition-refused", title="Transition refused")
    if err.kind == "InvalidStaff":
        return invalid("staff_id", str(err))
    if err.kind in ("InvalidCallback", "InvalidReference"):
        return ApiProblem(422, str(err), slug="invalid-callback", title="Invalid callback")
    return ApiProblem(409, str(err), slug="refused", title="Refused")


async def _load(deps: Deps, principal: Principal, callback_id: uuid.UUID, **kwargs: Any) -> dict[str, Any]:
    async with deps.sessions() as session:
        found = await queries.get_callback(session, callback_id, principal.scope(), now=_now(), **kwargs)
    if found is None:
        raise not_found("callback", callback_id)
    log_context.bind(workflow_id=callback_workflow_id(callback_id), company_id=found.get("company_id"))
    return found


# --- create --------------------------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.CreatedOut,
    responses={200: {"description": "the callback this Idempotency-Key created before"}},
)
async def create_callback(
    body: schemas.CreateCallback,
    response: Response,
    principal: Creator,
    deps: DepsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="the same key returns the same callback (200) and starts nothing new",
        ),
    ] = None,
) -> dict[str, Any]:
    company_id = principal.company_for_write(body.company_id)
    # A retry whose callback already exists starts nothing, so it does not spend the key's budget.
    retry = False
    if idempotency_key is not None:
        async with deps.sessions() as session:
            existing = await session.get(CallbackRequest, callback_id_for(company_id, idempotency_key))
            retry = existing is not None
    wait = 0.0 if retry else deps.create_limits.take(principal.key_id)
    if wait > 0:
        raise ApiProblem(
            429,
            f"this key may create {deps.settings.api_create_rate_per_minute:g} callbacks per minute "
            f"(bursts of {deps.settings.api_create_burst}); try again in {retry_after_header(wait)} s",
            slug="rate-limited",
            headers={"Retry-After": retry_after_header(wait)},
        )
    async with deps.sessions() as session:
        found = (
            await session.execute(
                select(Branch.phone_number, Branch.time_zone, Company.time_zone)
                .join(Company, Company.id == Branch.company_id)
                .where(Branch.id == body.branch_id, Branch.company_id == company_id)
            )
        ).first()
        if found is None:
            raise invalid("branch_id", f"no such branch in company {company_id}")
        try:
            phone = to_e164(body.phone_number, default_region(*found))
        except ValueError as exc:
            raise invalid("phone_number", str(exc)) from None
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
            errors = [
                FieldError(field=".".join(map(str, e["loc"])) or "body", message=e["msg"])
                for e in exc.errors()
            ]
            raise ApiProblem(422, str(exc), slug="validation-error", errors=errors) from None
        problems = await reference_errors(session, request)
    if problems:
        errors = [FieldError(field=p.split(":", 1)[0], message=p.split(":", 1)[1].strip()) for p in problems]
        raise ApiProblem(
            422, "; ".join(problems), slug="validation-error", title="Invalid request", errors=errors
        )
    try:
        result = await deps.callbacks.create(request, idempotency_key)
    except CallbackError as err:
        raise _refusal(err) from err
    if not result.created and result.state.request != request:
        raise ApiProblem(
            422,
            "this Idempotency-Key was already used for a different request",
            slug="idempotency-key-reused",
            title="Idempotency-Key reused",
        )
    row = await _load(deps, principal, result.state.id, include_deleted=True)
    response.status_code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    response.headers["Location"] = f"/v1/callbacks/{result.state.id}"
    return {**row, "created": result.created}


# --- reads ---------------------------------------------------------------------------------------


@router.get("", response_model=schemas.CallbackPage)
async def list_callbacks(
    principal: Reader,
    deps: DepsDep,
    status_: Annotated[list[CallbackStatus], Query(alias="status")] = [],  # noqa: B006
    priority: Annotated[list[Priority], Query()] = [],  # noqa: B006
    branch_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    assigned_to: uuid.UUID | None = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the name or phone")] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    include_deleted: bool = False,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
    sort: Annotated[str, Query(pattern=SORT_PATTERN)] = "-created_at",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    if q is not None:
        try:
            q = schemas.single_line(q)
        except ValueError as exc:
            raise invalid("q", str(exc)) from None
    spec = queries.CallbackFilter(
        company_id=principal.scope(company_id),
        statuses=status_,
        priorities=priority,
        branch_id=branch_id,
        assigned_to=assigned_to,
        overdue=overdue,
        q=q or None,
        created_from=_aware(created_from),
        created_to=_aware(created_to),
        include_deleted=include_deleted,
    )
    async with deps.sessions() as session:
        found = await queries.list_callbacks(
            session, spec, now=_now(), sort=sort, page=page, page_size=page_size
        )
    return {"items": found.rows, "total": found.total, "page": page, "page_size": page_size}


@router.get("/summary", response_model=schemas.Summary)
async def summary(
    principal: Reader,
    deps: DepsDep,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
) -> dict[str, Any]:
    async with deps.sessions() as session:
        return await queries.summary(session, principal.scope(company_id), now=_now())


@router.get("/{callback_id}", response_model=schemas.CallbackDetail)
async def get_callback(
    callback_id: uuid.UUID, principal: Reader, deps: DepsDep, include_deleted: bool = False
) -> dict[str, Any]:
    row = await _load(deps, principal, callback_id, include_deleted=include_deleted)
    async with deps.sessions() as session:
        history = await queries.callback_history(session, callback_id)
    return {**row, **history}


# --- staff actions -------------------------------------------------------------------------------


async def _act(
    deps: Deps,
    principal: Principal,
    callback_id: uuid.UUID,
    action: StaffAction,
    command: StaffCommand,
) -> dict[str, Any]:
    row = await _load(deps, principal, callback_id)
    try:
        check_allowed(action, CallbackStatus(row["status"]))
    except TransitionRefused as refused:
        raise ApiProblem(409, str(refused), slug="transition-refused", title="Transition refused") from None
    try:
        await deps.callbacks.act(callback_id, command)
    except CallbackError as err:
        raise _refusal(err) from err
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # The workflow finished between the read and the Update (e.g. it just expired).
        current = await _load(deps, principal, callback_id)
        raise ApiProblem(
            409,
            f"cannot {action.value.replace('_', ' ')}: the callback is {current['status']}",
            slug="transition-refused",
            title="Transition refused",
        ) from err
    return await _load(deps, principal, callback_id)


def _staff_for(principal: Principal, staff_id: uuid.UUID | None) -> uuid.UUID:
    chosen = staff_id or principal.staff_id
    if chosen is None:
        raise invalid("staff_id", "required (only a staff key assigns to its own staff member by default)")
    return chosen


@router.post("/{callback_id}/assign", response_model=schemas.CallbackOut)
async def assign(
    callback_id: uuid.UUID, principal: Worker, deps: DepsDep, body: schemas.AssignBody | None = None
) -> dict[str, Any]:
    staff_id = _staff_for(principal, body.staff_id if body else None)
    command = Assign(staff_id=staff_id, actor=principal.actor)
    return await _act(deps, principal, callback_id, StaffAction.ASSIGN, command)


@router.post("/{callback_id}/contacted", response_model=schemas.CallbackOut)
async def contacted(callback_id: uuid.UUID, principal: Worker, deps: DepsDep) -> dict[str, Any]:
    command = MarkContacted(actor=principal.actor)
    return await _act(deps, principal, callback_id, StaffAction.MARK_CONTACTED, command)


@router.post("/{callback_id}/attempts", response_model=schemas.CallbackOut)
async def attempt(
    callback_id: uuid.UUID, body: schemas.AttemptBody, principal: Worker, deps: DepsDep
) -> dict[str, Any]:
    command = RecordAttempt(outcome=body.outcome, notes=body.notes or None, actor=principal.actor)
    return await _act(deps, principal, callback_id, StaffAction.RECORD_ATTEMPT, command)


@router.post("/{callback_id}/complete", response_model=schemas.CallbackOut)
async def complete(
    callback_id: uuid.UUID, body: schemas.CompleteBody, principal: Worker, deps: DepsDep
) -> dict[str, Any]:
    command = Complete(notes=body.notes, actor=principal.actor)
    return await _act(deps, principal, callback_id, StaffAction.COMPLETE, command)


@router.post("/{callback_id}/cancel", response_model=schemas.CallbackOut)
async def cancel(
    callback_id: uuid.UUID, principal: Worker, deps: DepsDep, body: schemas.CancelBody | None = None
) -> dict[str, Any]:
    command = Cancel(reason=(body.reason or None) if body else None, actor=principal.actor)
    return await _act(deps, principal, callback_id, StaffAction.CANCEL, command)


@router.post("/{callback_id}/escalate", response_model=schemas.CallbackOut)
async def escalate(
    callback_id: uuid.UUID, body: schemas.EscalateBody, principal: Worker, deps: DepsDep
) -> dict[str, Any]:
    command = Escalate(reason=body.reason, details=body.details or None, actor=principal.actor)
    return await _act(deps, principal, callback_id, StaffAction.ESCALATE, command)


@router.post("/{callback_id}/priority", response_model=schemas.CallbackOut)
async def change_priority(
    callback_id: uuid.UUID, body: schemas.PriorityBody, principal: Worker, deps: DepsDep
) -> dict[str, Any]:
    command = ChangePriority(priority=body.priority, actor=principal.actor)
    return await _act(deps, principal, callback_id, StaffAction.CHANGE_PRIORITY, command)


# --- bulk ----------------------------------------------------------------------------------------

BULK_CONCURRENCY = 8


async def _bulk(
    deps: Deps,
    principal: Principal,
    ids: list[uuid.UUID],
    action: StaffAction,
    command: Callable[[], StaffCommand],
) -> dict[str, Any]:
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
                    row = await _act(deps, principal, callback_id, action, command())
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


@bulk_router.post("/assign", response_model=schemas.BulkResult)
async def bulk_assign(body: schemas.BulkAssignBody, principal: Worker, deps: DepsDep) -> dict[str, Any]:
    staff_id = _staff_for(principal, body.staff_id)
    return await _bulk(
        deps,
        principal,
        body.ids,
        StaffAction.ASSIGN,
        lambda: Assign(staff_id=staff_id, actor=principal.actor),
    )


@bulk_router.post("/complete", response_model=schemas.BulkResult)
async def bulk_complete(body: schemas.BulkCompleteBody, principal: Worker, deps: DepsDep) -> dict[str, Any]:
    return await _bulk(
        deps,
        principal,
        body.ids,
        StaffAction.COMPLETE,
        lambda: Complete(notes=body.notes, actor=principal.actor),
    )


# --- soft delete ---------------------------------------------------------------------------------


@router.delete("/{callback_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_callback(callback_id: uuid.UUID, principal: Admin, deps: DepsDep) -> Response:
    """Soft delete: an open callback is cancelled first (its workflow ends), then hidden from lists."""
    row = await _load(deps, principal, callback_id)
    if not CallbackStatus(row["status"]).is_terminal:
        try:
            await deps.callbacks.act(callback_id, Cancel(reason="deleted", actor=principal.actor))
        except CallbackError as err:
            if err.kind != "TransitionRefused":
                raise _refusal(err) from err
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    async with transaction(deps.sessions) as session:
        await queries.set_deleted(session, callback_id, principal.scope(), _now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{callback_id}/restore", response_model=schemas.CallbackOut)
async def restore_callback(callback_id: uuid.UUID, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    """Undo a soft delete. The callback keeps the state it had (a deleted open callback stays cancelled)."""
    async with transaction(deps.sessions) as session:
        restored = await queries.set_deleted(session, callback_id, principal.scope(), None)
    if not restored:
        await _load(deps, principal, callback_id)  # 404 when it does not exist for this key
        raise ApiProblem(409, f"callback {callback_id} is not deleted", slug="not-deleted")
    return await _load(deps, principal, callback_id)
