"""Policy shapes: the validated `config` of each policy type, the subject a policy is resolved for, and
the `PolicyResult` every decision returns (docs/design.md §3.3).

A `config` is stored as JSON in `policy_configurations.config`; it is validated here before it is written,
so a bad key, a negative number of hours or a tier list out of order is refused with a clear message and
nothing changes. Every key is optional: a level sets only what it wants to override (key-by-key merge).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from models.callbacks import Priority, SlaClock


class PolicyType(StrEnum):
    CANCELLATION = "cancellation"
    RESCHEDULE = "reschedule"
    CALLBACK = "callback"


class Level(StrEnum):
    """The levels of the hierarchy, from the most specific to the most general."""

    STAFF = "staff"
    SERVICE = "service"
    BRANCH = "branch"
    COMPANY = "company"


class ModificationType(StrEnum):
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"

    @property
    def policy_type(self) -> PolicyType:
        return PolicyType.CANCELLATION if self is ModificationType.CANCEL else PolicyType.RESCHEDULE


# Money and other decimals are kept exact in Python and written to JSON as plain numbers (JSONB keeps the
# digits exactly; reading them back through float and `str()` restores the same two-decimal value).
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=10, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]
Hours = Annotated[
    Decimal,
    Field(ge=0, le=24 * 366, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]
Percentage = Annotated[
    Decimal,
    Field(ge=0, le=100, decimal_places=4, allow_inf_nan=False),
    PlainSerializer(float, return_type=float, when_used="json"),
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeeTier(_Config):
    """From `min_hours` of notice up to the next tier's `min_hours`, the fee is `fee`."""

    min_hours: Hours
    fee: Money


FEE_KEYS = ("fee", "fee_tiers", "fee_percentage")


class _FeePolicy(_Config):
    hours_before: Hours | None = None
    fee: Money | None = None
    fee_tiers: list[FeeTier] | None = None
    fee_percentage: Percentage | None = None

    @field_validator("fee_tiers")
    @classmethod
    def _tiers_sorted_without_overlap(cls, tiers: list[FeeTier] | None) -> list[FeeTier] | None:
        if tiers is None:
            return None
        if not tiers:
            raise ValueError("must list at least one tier (leave the key out for no tiers)")
        bounds = [tier.min_hours for tier in tiers]
        if len(set(bounds)) != len(bounds):
            raise ValueError(
                f"tiers overlap: min_hours {bounds} repeats a value; each tier needs its own start"
            )
        ascending = all(a < b for a, b in itertools.pairwise(bounds))
        descending = all(a > b for a, b in itertools.pairwise(bounds))
        if not (ascending or descending):
            raise ValueError(
                f"tiers are not sorted: min_hours {bounds} must be in ascending or descending order"
            )
        if min(bounds) != 0:
            raise ValueError(
                f"the lowest tier starts at min_hours {min(bounds)}; "
                "it must start at 0 so that every notice has a fee"
            )
        return tiers

    @model_validator(mode="after")
    def _one_fee_rule(self) -> _FeePolicy:
        given = [key for key in FEE_KEYS if getattr(self, key) is not None]
        if len(given) > 1:
            raise ValueError(
                f"sets {' and '.join(given)}: a level sets at most one of fee, fee_tiers, fee_percentage "
                "(a more specific level may replace another level's rule)"
            )
        return self


class CancellationPolicy(_FeePolicy):
    """`max_cancellations_per_month`: per customer over a rolling 30 days; null = unlimited."""

    max_cancellations_per_month: int | None = Field(default=None, ge=0)


class ReschedulePolicy(_FeePolicy):
    """`max_reschedules_per_appointment`: how often one appointment may move; null = unlimited."""

    max_reschedules_per_appointment: int | None = Field(default=None, ge=0)


class CallbackPolicy(_Config):
    """Overrides of the callback rules (rules/callback_settings.py); `sla_hours` may name a few priorities."""

    sla_hours: dict[Priority, Annotated[float, Field(gt=0, le=24 * 366)]] | None = None
    auto_assign: bool | None = None
    escalation_cooldown_hours: float | None = Field(default=None, gt=0, le=24 * 366)
    max_contact_attempts: int | None = Field(default=None, ge=1)
    max_escalations: int | None = Field(default=None, ge=0)
    # `business_hours`: deadlines, warnings, cooldowns and expiry count only the branch's open hours.
    sla_clock: SlaClock | None = None


CONFIG_MODELS: dict[PolicyType, type[_Config]] = {
    PolicyType.CANCELLATION: CancellationPolicy,
    PolicyType.RESCHEDULE: ReschedulePolicy,
    PolicyType.CALLBACK: CallbackPolicy,
}


class PolicyConfigError(ValueError):
    """A policy that cannot be stored; `problems` lists one human-readable message per field."""

    def __init__(self, policy_type: str, problems: list[str]) -> None:
        self.policy_type = policy_type
        self.problems = problems
        super().__init__(f"invalid {policy_type} policy: " + "; ".join(problems))


def _describe(error: Any, allowed: list[str]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (allowed keys: {', '.join(allowed)})"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def validate_config(policy_type: str, config: Any) -> dict[str, Any]:
    """The config as it is stored: validated, only the keys that were given (an explicit null stays)."""
    try:
        kind = PolicyType(policy_type)
    except ValueError:
        types = ", ".join(t.value for t in PolicyType)
        raise PolicyConfigError(policy_type, [f"unknown policy type (allowed: {types})"]) from None
    if not isinstance(config, dict):
        raise PolicyConfigError(kind.value, ["config: must be a JSON object"])
    model = CONFIG_MODELS[kind]
    try:
        parsed = model.model_validate(config)
    except ValidationError as exc:
        allowed = sorted(model.model_fields)
        raise PolicyConfigError(kind.value, [_describe(e, allowed) for e in exc.errors()]) from None
    return parsed.model_dump(mode="json", exclude_unset=True)


class PolicySubject(BaseModel):
    """The entities a resolution is for: an appointment's or a callback's company, branch, service, staff."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    company_id: int = Field(gt=0)
    branch_id: int | None = Field(default=None, gt=0)
    service_id: int | None = Field(default=None, gt=0)
    staff_id: UUID | None = None

    def entities(self) -> dict[str, str]:
        """{level: configurable_id} of the levels this subject has (ids as stored, i.e. as text)."""
        found = {
            Level.STAFF.value: self.staff_id,
            Level.SERVICE.value: self.service_id,
            Level.BRANCH.value: self.branch_id,
            Level.COMPANY.value: self.company_id,
        }
        return {level: str(value) for level, value in found.items() if value is not None}


class Source(BaseModel):
    """Which level (and which entity of it) supplied a key."""

    model_config = ConfigDict(frozen=True)

    level: str
    entity_id: str


class PolicyResult(BaseModel):
    """The answer of every decision: allowed or not and why, the fee, the notice, the quota left and the
    level that supplied each key of the policy it was decided under."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str | None = None
    fee: Decimal = Decimal("0.00")
    currency: str
    hours_notice: float | None = None
    remaining_quota: int | None = None
    sources: dict[str, Source] = Field(default_factory=dict)


QuotaSource = Literal["stats", "live"]


# --- messages of the policy activities and workflows --------------------------------------------


class CheckAppointmentChange(BaseModel):
    """Ask whether an appointment may be cancelled or rescheduled at `now` (the workflow's time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    appointment_id: int = Field(gt=0)
    company_id: int | None = Field(default=None, gt=0)
    change: ModificationType
    now: datetime
    max_stats_age: timedelta = timedelta(minutes=15)


class StatsRefreshed(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    calculated_at: datetime
