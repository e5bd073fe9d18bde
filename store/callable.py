"""Dial windows on the callback read model: "callable now" and "next callable at" for a row (computed
with rules/dial_window.py at the reader's `now`, so they never go stale), and the same question as SQL for
the queue's callable-now filter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Time, and_, cast, func, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from models.callbacks import TERMINAL_STATUSES
from models.dial_window import DialWindow
from models.tables import CallbackRequest
from rules.dial_window import callable_status

CR = CallbackRequest
_TERMINAL = [status.value for status in TERMINAL_STATUSES]


def dial_window_of(callback: CallbackRequest) -> DialWindow | None:
    if (
        callback.dial_time_zone is None
        or callback.dial_window_start is None
        or callback.dial_window_end is None
    ):
        return None
    return DialWindow(
        time_zone=callback.dial_time_zone,
        start=callback.dial_window_start,
        end=callback.dial_window_end,
        not_before=callback.dial_not_before,
        not_after=callback.dial_not_after,
    )


def dial_fields(callback: CallbackRequest, now: datetime) -> dict[str, Any]:
    """`callable_now`, `next_callable_at` and the window they come from; None for a finished callback
    (nobody calls it any more) and for one made before dial windows."""
    dial = dial_window_of(callback)
    status = (None, None) if dial is None or callback.status in _TERMINAL else callable_status(dial, now)
    return {
        "callable_now": status[0],
        "next_callable_at": status[1],
        "dial_window": None
        if dial is None
        else {
            "time_zone": dial.time_zone,
            "start": dial.start,
            "end": dial.end,
            "not_before": dial.not_before,
            "not_after": dial.not_after,
        },
    }


def callable_now_condition(now: datetime) -> ColumnElement[bool]:
    """Open, and inside the dial window at `now`: the allowed hours on the customer's wall clock (a window
    ending before it starts wraps past midnight, an end of 00:00 is midnight) and the preferred window
    while it lasts. Rows without a dial window (made before them) count as callable."""
    local = cast(func.timezone(CR.dial_time_zone, literal(now, DateTime(timezone=True))), Time)
    start, end = CR.dial_window_start, CR.dial_window_end
    in_hours = or_(
        and_(start < end, local >= start, local < end),
        and_(start >= end, or_(local >= start, local < end)),
    )
    preferred = or_(  # none, over, or begun
        CR.dial_not_after.is_(None),
        CR.dial_not_after <= now,
        CR.dial_not_before.is_(None),
        CR.dial_not_before <= now,
    )
    return and_(CR.status.not_in(_TERMINAL), or_(CR.dial_time_zone.is_(None), and_(in_hours, preferred)))
