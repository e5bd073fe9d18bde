"""/v1/callbacks: create, list, detail, summary, the staff actions, bulk actions, soft delete and restore.

Reads come from the read model (`callback_requests`); every change goes through the callback's workflow
as an Update, which answers only after the change is in PostgreSQL, so the row re-read for the response
already shows it. A refused transition is caught before Temporal is asked when the row already tells (a
finished callback's workflow is closed and could not answer anyway).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status
from pydantic import BaseModel
from temporalio.service import RPCError, RPCStatusCode

from api import callback_service as service
from api import schemas, text
from api.action_bodies import body_for, body_optional
from api.auth import Admin, Creator, Principal, Reader, Worker
from api.deps import Deps, get_deps
from api.engine_errors import problem_for
from api.params import MAX_ID, QueryBool, Rfc3339
from api.problems import ApiProblem, invalid
from models.callbacks import Assign, CallbackStatus, Cancel, Complete, Priority, StaffAction
from rules.staff_actions import STAFF_ACTIONS, StaffActionSpec
from starter.client import CallbackError
from starter.deadlines import TemporalCallFailed
from store import callback_queries as queries
from store.db import transaction

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"])
# Included before `router`: `/bulk/assign` must not be taken for `/{callback_id}/assign`.
bulk_router = APIRouter(prefix="/v1/callbacks/bulk", tags=["callbacks"])

DepsDep = Annotated[Deps, Depends(get_deps)]

SORT_PATTERN = "^-?(" + "|".join(queries.SORT_KEYS) + ")$"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
ActionKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="the same key applies the action once: a retry answers the first call's outcome",
    ),
]


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
    result = await service.create(deps, principal, body, idempotency_key, company_id=company_id)
    response.status_code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    response.headers["Location"] = f"/v1/callbacks/{result.row['id']}"
    return {**result.row, "created": result.created}


# --- reads ---------------------------------------------------------------------------------------


@router.get("", response_model=schemas.CallbackPage)
async def list_callbacks(
    principal: Reader,
    deps: DepsDep,
    status_: Annotated[list[CallbackStatus], Query(alias="status")] = [],  # noqa: B006
    priority: Annotated[list[Priority], Query()] = [],  # noqa: B006
    branch_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    assigned_to: uuid.UUID | None = None,
    overdue: QueryBool | None = None,
    callable_now: Annotated[
        QueryBool | None, Query(description="open and inside the customer's dial window right now")
    ] = None,
    q: Annotated[
        text.SingleLine | None, Query(max_length=100, description="part of the name or phone")
    ] = None,
    created_from: Rfc3339 | None = None,
    created_to: Rfc3339 | None = None,
    include_deleted: QueryBool = False,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
    sort: Annotated[str, Query(pattern=SORT_PATTERN)] = "-created_at",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    service.check_include_deleted(principal, include_deleted)
    if q is not None:
        try:
            q = text.single_line(q)
        except ValueError as exc:
            raise invalid("q", str(exc)) from None
    spec = queries.CallbackFilter(
        company_id=principal.scope(company_id),
        statuses=status_,
        priorities=priority,
        branch_id=branch_id,
        assigned_to=assigned_to,
        overdue=overdue,
        callable_now=callable_now,
        q=q or None,
        created_from=service.aware(created_from),
        created_to=service.aware(created_to),
        include_deleted=include_deleted,
    )
    async with deps.sessions() as session:
        found = await queries.list_callbacks(
            session, spec, now=service.now(), sort=sort, page=page, page_size=page_size
        )
    return {"items": found.rows, "total": found.total, "page": page, "page_size": page_size}


@router.get("/summary", response_model=schemas.Summary)
async def summary(
    principal: Reader,
    deps: DepsDep,
    company_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="super_admin only")] = None,
) -> dict[str, Any]:
    async with deps.sessions() as session:
        return await queries.summary(session, principal.scope(company_id), now=service.now())


@router.get("/{callback_id}", response_model=schemas.CallbackDetail)
async def get_callback(
    callback_id: uuid.UUID, principal: Reader, deps: DepsDep, include_deleted: QueryBool = False
) -> dict[str, Any]:
    service.check_include_deleted(principal, include_deleted)
    return await service.detail(deps, principal, callback_id, include_deleted=include_deleted)


# --- staff actions: one route per row of rules/staff_actions.py ----------------------------------------


def _action_route(spec: StaffActionSpec[Any]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """`POST /{callback_id}/{path}` for one action, with the action's body (api/action_bodies.py) declared
    in the signature FastAPI reads, so each action keeps its own request schema in OpenAPI."""
    body_model = body_for(spec.action)

    async def endpoint(
        callback_id: uuid.UUID,
        principal: Principal,
        deps: Deps,
        body: BaseModel | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        command = service.command_for(spec.action, principal, body)
        return await service.act(deps, principal, callback_id, spec.action, command, idempotency_key)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("callback_id", keyword, annotation=uuid.UUID),
        inspect.Parameter("principal", keyword, annotation=Worker),
        inspect.Parameter("deps", keyword, annotation=DepsDep),
        inspect.Parameter("idempotency_key", keyword, annotation=ActionKey, default=None),
    ]
    if body_model is not None and body_optional(body_model):
        parameters.append(inspect.Parameter("body", keyword, annotation=body_model | None, default=None))
    elif body_model is not None:
        parameters.append(inspect.Parameter("body", keyword, annotation=body_model))
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=dict[str, Any])  # type: ignore[attr-defined]
    endpoint.__name__ = spec.verb
    return endpoint


for _spec in STAFF_ACTIONS.values():
    router.add_api_route(
        f"/{{callback_id}}/{_spec.path}",
        _action_route(_spec),
        methods=["POST"],
        response_model=schemas.CallbackOut,
        name=_spec.verb,
        description=_spec.summary,
    )


# --- bulk ----------------------------------------------------------------------------------------


@bulk_router.post("/assign", response_model=schemas.BulkResult)
async def bulk_assign(
    body: schemas.BulkAssignBody, principal: Worker, deps: DepsDep, idempotency_key: ActionKey = None
) -> dict[str, Any]:
    staff_id = service.staff_for(principal, body.staff_id)
    return await service.bulk(
        deps,
        principal,
        body.ids,
        StaffAction.ASSIGN,
        lambda: Assign(staff_id=staff_id, actor=principal.actor),
        idempotency_key,
    )


@bulk_router.post("/complete", response_model=schemas.BulkResult)
async def bulk_complete(
    body: schemas.BulkCompleteBody, principal: Worker, deps: DepsDep, idempotency_key: ActionKey = None
) -> dict[str, Any]:
    return await service.bulk(
        deps,
        principal,
        body.ids,
        StaffAction.COMPLETE,
        lambda: Complete(notes=body.notes, actor=principal.actor),
        idempotency_key,
    )


# --- soft delete ---------------------------------------------------------------------------------


@router.delete("/{callback_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_callback(callback_id: uuid.UUID, principal: Admin, deps: DepsDep) -> Response:
    """Soft delete: an open callback is cancelled first (its workflow ends), then hidden from lists."""
    row = await service.load(deps, principal, callback_id)
    if not CallbackStatus(row["status"]).is_terminal:
        try:
            await deps.callbacks.act(row["workflow_id"], Cancel(reason="deleted", actor=principal.actor))
        except CallbackError as err:
            # Finished meanwhile, or its workflow was stopped by an operator: nothing left to cancel.
            if err.kind not in ("TransitionRefused", "CallbackStopped"):
                raise service.refusal(err) from err
        except TemporalCallFailed as err:
            raise problem_for(err, "the cancel before deleting") from err
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    async with transaction(deps.sessions) as session:
        await queries.set_deleted(session, callback_id, principal.scope(), service.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{callback_id}/restore", response_model=schemas.CallbackOut)
async def restore_callback(callback_id: uuid.UUID, principal: Admin, deps: DepsDep) -> dict[str, Any]:
    """Undo a soft delete. The callback keeps the state it had (a deleted open callback stays cancelled)."""
    async with transaction(deps.sessions) as session:
        restored = await queries.set_deleted(session, callback_id, principal.scope(), None)
    if not restored:
        await service.load(deps, principal, callback_id)  # 404 when it does not exist for this key
        raise ApiProblem(409, f"callback {callback_id} is not deleted", slug="not-deleted")
    return await service.load(deps, principal, callback_id)
