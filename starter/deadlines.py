"""A deadline on every call into Temporal, and what a call that failed at the edge of Temporal means.

Without a deadline of its own a client call waits as long as the connection lets it: an unresponsive
Temporal server held API requests for 45 s (gRPC keep-alive) and then answered a generic error, and the
SDK polls an Update's outcome forever. `bounded` cuts every call at `timeout` seconds and turns the
failures a caller can act on into three exceptions:

- `TemporalTimeout`: no answer in time while Temporal itself answers (a slow or wedged workflow). The call
  may still take effect: an Update admitted by the server is delivered when the workflow gets to it, so
  the caller must say "may still be applied" and offer a safe retry (same Update id, see starter/client.py);
- `TemporalBusy`: Temporal refused the call for now (`RESOURCE_EXHAUSTED`, e.g. "limit on number of
  concurrent in-flight updates has been reached"): nothing was done, try again shortly;
- `TemporalUnavailable`: the server cannot be reached (connection refused or reset, or a call that ran out
  of time while the server does not answer a health check either): nothing is known to be done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

T = TypeVar("T")

# How long the health check after a timed-out call may take: it tells "slow" from "gone".
PROBE_SECONDS = 1.0
# What the API tells a client to wait before it tries again (Retry-After), by failure.
BUSY_RETRY_AFTER = 1
UNAVAILABLE_RETRY_AFTER = 5
TIMEOUT_RETRY_AFTER = 2


class TemporalCallFailed(Exception):
    """A call into Temporal that did not get through; `retry_after` is a good wait in seconds."""

    retry_after: int = TIMEOUT_RETRY_AFTER


class TemporalTimeout(TemporalCallFailed):
    """No answer within the deadline, while the server is up: the call may still take effect."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Temporal did not answer within {seconds:g} s")
        self.seconds = seconds


class TemporalBusy(TemporalCallFailed):
    """Refused for now (RESOURCE_EXHAUSTED): nothing was done."""

    retry_after = BUSY_RETRY_AFTER


class TemporalUnavailable(TemporalCallFailed):
    """The server cannot be reached: nothing is known to be done."""

    retry_after = UNAVAILABLE_RETRY_AFTER


def api_retry_config(seconds: float) -> RetryConfig:
    """How the SDK of a caller with a deadline of `seconds` retries on its own. Its default retries a
    refusal (RESOURCE_EXHAUSTED) and a lost connection for ten seconds and more, so the caller would only
    ever see a timeout; this lets them end well within the deadline, so a refusal is seen as one."""
    return RetryConfig(max_retries=2, max_elapsed_time_millis=max(100, int(seconds * 300)))


def rpc_timeout(timeout: float | None) -> timedelta | None:
    """The gRPC deadline of each request of a call (the server stops working for a caller that left)."""
    return timedelta(seconds=timeout) if timeout is not None else None


def _unreachable(err: RPCError) -> bool:
    # A refused or reset connection reaches us as UNKNOWN "transport error" once the SDK's retries end.
    return err.status == RPCStatusCode.UNAVAILABLE or (
        err.status == RPCStatusCode.UNKNOWN and "transport error" in err.message
    )


async def _server_answers(client: Client) -> bool:
    try:
        return await client.service_client.check_health(timeout=timedelta(seconds=PROBE_SECONDS))
    except Exception:
        return False


async def bounded(client: Client, seconds: float | None, call: Awaitable[T]) -> T:
    """Await `call` (a call on `client`) for at most `seconds` (None: no deadline of our own);
    raises `TemporalTimeout`, `TemporalBusy` or `TemporalUnavailable` as described above, and lets every
    other error (a refused Update, a workflow not found, ...) through unchanged."""
    try:
        if seconds is None:
            return await call
        async with asyncio.timeout(seconds):
            return await call
    except (TimeoutError, RPCTimeoutOrCancelledError) as err:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError from err  # our caller is being cancelled: not a timeout
        if await _server_answers(client):
            raise TemporalTimeout(seconds or 0) from err
        raise TemporalUnavailable("Temporal does not answer") from err
    except RPCError as err:
        if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            raise TemporalBusy(err.message) from err
        if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            if await _server_answers(client):
                raise TemporalTimeout(seconds or 0) from err
            raise TemporalUnavailable("Temporal does not answer") from err
        if _unreachable(err):
            raise TemporalUnavailable(f"Temporal cannot be reached: {err.message}") from err
        raise
