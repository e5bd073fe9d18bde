"""DELETE /v1/customers/{id}?erase=true: erase a customer's personal data (GDPR Art. 17).

Customers are never deleted (appointments, modifications and callbacks keep pointing at the row, and the
quota history stays countable): they are erased. First every open callback of the customer blanks its
own state through its workflow (the `erase_personal_data` Update writes the blanked state to its row), so
no later write of the workflow brings the data back and the `state` query shows none of it; the callbacks
keep running (SLA clock, escalations). Then one transaction blanks the customer row and every stored copy
(store/erasure.py). The call is idempotent: repeat it when it answered 503.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Admin
from api.deps import Deps, get_deps
from api.params import MAX_ID, QueryBool
from api.problems import ApiProblem, FieldError, not_found
from starter.client import CallbackError
from store import erasure
from store.db import transaction
from telemetry import logs as log_context

router = APIRouter(prefix="/v1/customers", tags=["customers"])

DepsDep = Annotated[Deps, Depends(get_deps)]
# An open callback's workflow answers the Update in milliseconds; one that does not is reported.
WORKFLOW_TIMEOUT_SECONDS = 10.0
CONCURRENCY = 8
RETRY_AFTER_SECONDS = 30


class ErasureReport(BaseModel):
    customer_id: int
    erased_at: datetime
    already_erased: bool
    callbacks: int
    open_callbacks_erased: int
    events: int
    escalations: int
    notification_deliveries: int
    modifications: int


async def _erase_open(deps: Deps, workflow_ids: list[str], actor: str) -> tuple[int, list[str]]:
    """Erase through each running workflow; returns how many did and the ones that could not (and why).
    A workflow that is no longer running has nothing left to write: its row is erased by the SQL."""
    gate = asyncio.Semaphore(CONCURRENCY)
    failed: list[str] = []
    erased = 0

    async def one(callback_id: str) -> None:
        nonlocal erased
        async with gate:
            try:
                async with asyncio.timeout(WORKFLOW_TIMEOUT_SECONDS):
                    await deps.callbacks.erase_personal_data(callback_id, actor)
                erased += 1
            except RPCError as err:
                if err.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                    failed.append(f"{callback_id}: {err.status.name if err.status else 'rpc error'}")
            except CallbackError as err:
                if err.kind != "InvalidCallback":  # a creation that failed has no state to erase
                    failed.append(f"{callback_id}: {err}")
            except TimeoutError:
                failed.append(f"{callback_id}: the workflow did not answer in {WORKFLOW_TIMEOUT_SECONDS:g} s")

    await asyncio.gather(*(one(workflow_id) for workflow_id in workflow_ids))
    return erased, failed


@router.delete(
    "/{customer_id}",
    response_model=ErasureReport,
    summary="Erase a customer's personal data (GDPR Art. 17)",
    responses={503: {"description": "some open callbacks could not be erased yet; repeat the request"}},
)
async def erase_customer(
    customer_id: Annotated[int, Path(gt=0, le=MAX_ID)],
    principal: Admin,
    deps: DepsDep,
    erase: Annotated[
        QueryBool,
        Query(
            description="must be true: customers are erased (anonymised), never deleted",
            json_schema_extra={"enum": [True]},
        ),
    ],
) -> ErasureReport:
    """Blank the customer's name, phone, email and every copy of them (callbacks and their workflows'
    state, audit events, notification log, modification reasons); the row stays for its references."""
    if not erase:
        raise ApiProblem(
            400,
            "customers are not deleted, only erased: DELETE /v1/customers/{id}?erase=true anonymises "
            "the customer's personal data everywhere (GDPR Art. 17) and keeps the row for its appointments "
            "and callbacks",
            slug="erase-required",
            errors=[FieldError(field="erase", message="must be true")],
        )
    async with deps.sessions() as session:
        target = await erasure.find_target(session, customer_id, principal.scope())
    if target is None:
        raise not_found("customer", customer_id)
    log_context.bind(company_id=target.company_id)
    erased_open, failed = await _erase_open(deps, target.open_callbacks, principal.actor)
    now = datetime.now(UTC)
    async with transaction(deps.sessions) as session:
        counts = await erasure.erase(session, target, now)
    if failed:
        raise ApiProblem(
            503,
            f"the customer's rows are erased, but {len(failed)} open callback(s) could not be erased in "
            "their workflows yet; repeat the request",
            slug="erasure-incomplete",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extra={"callbacks_not_erased": failed},
        )
    return ErasureReport(
        customer_id=target.customer_id,
        erased_at=counts.erased_at or now,
        already_erased=target.already_erased,
        callbacks=counts.callbacks,
        open_callbacks_erased=erased_open,
        events=counts.events,
        escalations=counts.escalations,
        notification_deliveries=counts.deliveries,
        modifications=counts.modifications,
    )
