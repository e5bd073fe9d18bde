"""How workflows call the Cal.com activities: by name, with timeouts and a retry policy that lets the
activity's `next_retry_delay` (Cal.com's rate-limit wait) decide when the next attempt goes out.

Import-safe in the workflow sandbox: only models, activity names and temporalio.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities import names
    from models.calcom import Booking, CancelBooking, FindSlots, FoundSlots, RescheduleBooking

CALCOM_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["InvalidSlotSearch", "UnknownService"],
)
SLOT_LOOKUP_START_TO_CLOSE = timedelta(seconds=30)
BOOKING_CALL_START_TO_CLOSE = timedelta(seconds=30)


async def find_slots(request: FindSlots, *, give_up_after: timedelta = timedelta(minutes=5)) -> FoundSlots:
    """Run `calcom_find_slots`; retries (a 429 block, a 5xx) stop after `give_up_after` in total."""
    found: FoundSlots = await workflow.execute_activity(
        names.CALCOM_FIND_SLOTS,
        request,
        result_type=FoundSlots,
        start_to_close_timeout=SLOT_LOOKUP_START_TO_CLOSE,
        schedule_to_close_timeout=give_up_after,
        retry_policy=CALCOM_RETRY_POLICY,
    )
    return found


async def cancel_booking(
    request: CancelBooking, *, give_up_after: timedelta = timedelta(minutes=5)
) -> Booking:
    """Run `calcom_cancel_booking` (idempotent: an already cancelled booking is the result)."""
    return await _booking_call(names.CALCOM_CANCEL_BOOKING, request, give_up_after)


async def reschedule_booking(
    request: RescheduleBooking, *, give_up_after: timedelta = timedelta(minutes=5)
) -> Booking:
    """Run `calcom_reschedule_booking`; the result is the *new* booking (new uid)."""
    return await _booking_call(names.CALCOM_RESCHEDULE_BOOKING, request, give_up_after)


async def _booking_call(
    activity_name: str, request: CancelBooking | RescheduleBooking, give_up_after: timedelta
) -> Booking:
    booking: Booking = await workflow.execute_activity(
        activity_name,
        request,
        result_type=Booking,
        start_to_close_timeout=BOOKING_CALL_START_TO_CLOSE,
        schedule_to_close_timeout=give_up_after,
        retry_policy=CALCOM_RETRY_POLICY,
    )
    return booking
