"""What the API answers about SLA clocks and dial windows (a callback's dial window, the summary's SLA
compliance per clock), and about a callback whose workflow is stuck."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.params import LocalTimeOut


class DialWindowOut(BaseModel):
    time_zone: str = Field(description="the customer's zone (directory, else phone number, else branch)")
    start: LocalTimeOut = Field(description="allowed hours on the customer's wall clock, from")
    end: LocalTimeOut = Field(description="until (before `start`: past midnight; 00:00: midnight)")
    not_before: datetime | None = Field(description="the customer's preferred window, while it lasts")
    not_after: datetime | None


class ClockCompliance(BaseModel):
    completed: int
    completed_on_time: int
    sla_compliance_rate: float | None
    deadlines_moved: int = Field(description="deadlines moved to the customer's first dial window")


class StuckOut(BaseModel):
    """The callback's workflow cannot get a database step through (docs/operations.md, "Stuck callbacks")."""

    step: str = Field(description="prepare, candidates or persist")
    since: datetime = Field(description="the step's first failure")
    failed_rounds: int
    error: str = Field(description="the last failure's type")
    gave_up_at: datetime | None = Field(description="it stopped retrying on its own: an operator's turn")
