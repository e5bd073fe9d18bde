"""How long one delivery attempt may take, and how long its claim on the delivery row (the lease) lasts.

The channel's own deadline (the most one send may take, enforced by the channel) is the base. The
activity's start-to-close is longer by what happens around the send (the claim, the template render, the
outcome's write), so Temporal never gives up on an attempt that is still within its send. The lease is
longer than the start-to-close, so a retry that Temporal starts after a timeout finds the row still
leased and waits instead of sending a second copy while the first attempt may still be talking to the
receiver. Pure arithmetic, shared by the workflow (timeouts) and the activity (lease).
"""

from __future__ import annotations

from datetime import timedelta

# The claim, the template render (2 s + 1 s grace in channels/sandbox.py) and the outcome's write.
AROUND_THE_SEND = timedelta(seconds=30)
# A lease outlives the attempt's start-to-close by this much (clock skew, the worker noticing the timeout).
LEASE_MARGIN = timedelta(seconds=30)
# Plans made before they carried their channel's deadline ran under a start-to-close of 60 s.
LEGACY_SEND = timedelta(seconds=30)


def attempt_timeout(send_timeout_seconds: float | None) -> timedelta:
    """The delivery activity's start-to-close for a channel whose sends take at most this long."""
    send = LEGACY_SEND if send_timeout_seconds is None else timedelta(seconds=send_timeout_seconds)
    return send + AROUND_THE_SEND


def lease_duration(start_to_close: timedelta) -> timedelta:
    return start_to_close + LEASE_MARGIN


def send_budget(start_to_close: timedelta) -> timedelta:
    """What an attempt under this start-to-close leaves for the send itself."""
    return max(start_to_close - AROUND_THE_SEND, timedelta(seconds=1))
