"""When a customer may be called (DESIGN §8): every day inside the allowed hours on the customer's own wall
clock and, while their preferred window is not over, only inside it. The arithmetic lives in
`rules/dial_window.py`; this is the shape the prepare activity hands the workflow and the row stores.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

from models.calcom import check_time_zone

DEFAULT_DIAL_START = time(8, 0)
DEFAULT_DIAL_END = time(20, 0)


class ZoneSource(StrEnum):
    """Where the customer's time zone came from, from the most to the least certain."""

    CUSTOMER = "customer"  # customers.time_zone
    PHONE = "phone"  # the phone number's region (phonenumbers' time-zone data)
    BRANCH = "branch"  # neither says: the branch's own zone


class DialWindow(BaseModel):
    """Allowed hours `start`–`end` (local, in `time_zone`; an `end` before `start` wraps past midnight,
    00:00 is the end of the day) and the customer's preferred window [`not_before`, `not_after`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_zone: str
    start: time = DEFAULT_DIAL_START
    end: time = DEFAULT_DIAL_END
    zone_source: ZoneSource = ZoneSource.BRANCH
    not_before: AwareDatetime | None = None
    not_after: AwareDatetime | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_time_zone(value)

    @model_validator(mode="after")
    def _not_empty(self) -> DialWindow:
        if self.start == self.end and self.end != time(0):
            raise ValueError(f"the dial window {self.start.isoformat()}–{self.end.isoformat()} is empty")
        if self.not_before is not None and self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("the preferred window must end after it starts")
        return self
