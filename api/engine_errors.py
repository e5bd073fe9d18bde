"""What the API answers when a call into Temporal does not get through (starter/deadlines.py): never a
generic 500, always a problem that says whether the change may have happened and when to try again.

- 504 `engine-timeout`: no answer in time; the change may still be applied. A retry with the same
  Idempotency-Key is safe (the same callback, the same Update: applied at most once).
- 429 `engine-busy`: Temporal refused the call for now (too many actions waiting on one callback, or the
  namespace's rate limit); nothing was done.
- 503 `engine-unavailable`: Temporal cannot be reached; nothing is known to be done.

Every one carries `Retry-After`. The callback routes and the console turn these into `ApiProblem`s through
`problem_for` (so the console shows the same words); the handlers installed here catch them anywhere else,
and also the raw SDK errors of calls made without a deadline of their own.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.problems import ApiProblem, problem_response
from starter.deadlines import (
    TemporalBusy,
    TemporalCallFailed,
    TemporalTimeout,
    TemporalUnavailable,
)

SAFE_RETRY = "retrying with the same Idempotency-Key is safe: it is applied at most once"


def problem_for(
    err: TemporalCallFailed, doing: str = "the change", may_still: str = "may still be applied"
) -> ApiProblem:
    """The problem for a call that did not get through; `doing` names what was asked ("the action")."""
    headers = {"Retry-After": str(err.retry_after)}
    if isinstance(err, TemporalTimeout):
        within = f"within {err.seconds:g} s" if err.seconds else "in time"
        return ApiProblem(
            504,
            f"the engine did not answer {within}; {doing} {may_still}, {SAFE_RETRY}",
            slug="engine-timeout",
            headers=headers,
        )
    if isinstance(err, TemporalBusy):
        return ApiProblem(
            429,
            f"the engine is busy ({err}); {doing} was not applied, try again in {err.retry_after} s",
            slug="engine-busy",
            headers=headers,
        )
    return ApiProblem(
        503,
        f"the engine is unavailable ({err}); try again in {err.retry_after} s ({SAFE_RETRY})",
        slug="engine-unavailable",
        headers=headers,
    )


def _from_sdk(err: Exception) -> TemporalCallFailed | None:
    """A raw SDK error of a call made without `bounded`, as one of ours (None: not about reaching it)."""
    if isinstance(err, RPCTimeoutOrCancelledError):
        return TemporalTimeout(0)
    if not isinstance(err, RPCError):
        return None
    if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return TemporalBusy(err.message)
    if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
        return TemporalTimeout(0)
    if err.status == RPCStatusCode.UNAVAILABLE:
        return TemporalUnavailable(err.message)
    return None


def install(app: FastAPI) -> None:
    async def on_engine(request: Request, exc: Exception) -> JSONResponse:
        failed = exc if isinstance(exc, TemporalCallFailed) else _from_sdk(exc)
        if failed is None:
            raise exc  # not ours: the generic handler logs it and answers 500
        problem = problem_for(failed)
        return problem_response(
            request,
            problem.status,
            detail=problem.detail,
            slug=problem.slug,
            title=problem.title,
            headers=problem.headers,
        )

    for kind in (TemporalCallFailed, RPCTimeoutOrCancelledError, RPCError):
        app.add_exception_handler(kind, on_engine)
