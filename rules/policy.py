"""Cancel and reschedule decisions over a merged policy (docs/design.md §3.3): pure, no I/O, no clock.

Everything a decision needs is passed in: the merged policy (rules/policy_merge.py), the appointment's
facts, `now`, and how many modifications already count against the quota. Hours of notice are measured in
absolute time (UTC instants), so a daylight-saving switch between now and the appointment neither adds nor
removes an hour; the branch's time zone is used only to show the deadline as people there read it.

Fee rules. A level sets at most one of `fee` (fixed), `fee_tiers` (by notice) or `fee_percentage` (of the
appointment price); after the merge, the rule from the most specific level wins. A policy that exists but
names no fee rule charges the default tiers (≥ 48 h: 0, 24–48 h: 10, < 24 h: 15), as the original did; a
level that wants no fee sets `fee: 0`. No policy at all: allowed, fee 0. Money is `Decimal`, rounded half
up to cents, in the company's currency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from models.policies import FEE_KEYS, ModificationType, PolicyResult, Source
from rules.policy_merge import LEVELS, MergedPolicy

CENT = Decimal("0.01")
HOUR = timedelta(hours=1)
_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)

# (min_hours, fee) from the highest tier down: ≥ 48 h notice 0, 24–48 h 10, < 24 h 15.
DEFAULT_FEE_TIERS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(48), Decimal("0.00")),
    (Decimal(24), Decimal("10.00")),
    (Decimal(0), Decimal("15.00")),
)
CLOSED_STATUSES = frozenset({"cancelled", "completed", "no_show"})
QUOTA_KEYS: Mapping[ModificationType, str] = {
    ModificationType.CANCEL: "max_cancellations_per_month",
    ModificationType.RESCHEDULE: "max_reschedules_per_appointment",
}
_NOUNS: Mapping[ModificationType, str] = {
    ModificationType.CANCEL: "cancellation",
    ModificationType.RESCHEDULE: "reschedule",
}


@dataclass(frozen=True)
class AppointmentFacts:
    """What a decision needs to know about an appointment."""

    starts_at: datetime
    price: Decimal
    currency: str
    time_zone: str = "UTC"
    status: str = "scheduled"


def to_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def notice(starts_at: datetime, now: datetime) -> timedelta:
    """Time left until the appointment, in absolute time. Both instants must carry a time zone."""
    if starts_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("starts_at and now must be timezone-aware")
    # Subtracting two datetimes of the same ZoneInfo compares wall clocks; in UTC it is absolute time.
    return starts_at.astimezone(UTC) - now.astimezone(UTC)


def hours(delta: timedelta) -> float:
    return delta / HOUR


def _at_least(delta: timedelta, hours_value: Any) -> bool:
    """`delta >= hours_value hours`, exactly (integer microseconds, no float rounding at the boundary)."""
    threshold = Decimal(str(hours_value)) * _MICROSECONDS_PER_HOUR
    return Decimal(delta // timedelta(microseconds=1)) >= threshold


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


def _sources(policy: MergedPolicy) -> dict[str, Source]:
    return {key: Source(level=s.level, entity_id=s.entity_id) for key, s in policy.sources.items()}


def _rank(policy: MergedPolicy, key: str) -> int:
    source = policy.sources.get(key)
    return LEVELS.index(source.level) if source is not None else len(LEVELS)


def fee_rule(policy: MergedPolicy) -> str | None:
    """The fee key that applies: of `fee`, `fee_tiers`, `fee_percentage`, the one set most specifically."""
    present = [key for key in FEE_KEYS if policy.config.get(key) is not None]
    if not present:
        return None
    return min(present, key=lambda key: (_rank(policy, key), FEE_KEYS.index(key)))


def tier_fee(tiers: Sequence[tuple[Decimal, Decimal]], time_left: timedelta) -> Decimal:
    """The fee of the highest tier whose `min_hours` the notice reaches; below every tier, the lowest."""
    ordered = sorted(tiers, key=lambda tier: tier[0], reverse=True)
    for min_hours, fee in ordered:
        if _at_least(time_left, min_hours):
            return fee
    return ordered[-1][1]


def fee_amount(policy: MergedPolicy, time_left: timedelta, price: Decimal) -> tuple[Decimal, str]:
    """The fee and a short explanation of where it comes from."""
    if policy.is_empty:
        return Decimal("0.00"), "no policy"
    rule = fee_rule(policy)
    if rule is None:
        return to_cents(tier_fee(DEFAULT_FEE_TIERS, time_left)), "default fee tiers"
    value = policy.config[rule]
    source = policy.sources[rule]
    origin = f"{source.level} {source.entity_id}"
    if rule == "fee":
        return to_cents(_decimal(value)), f"fixed fee ({origin})"
    if rule == "fee_percentage":
        percentage = _decimal(value)
        return to_cents(price * percentage / 100), f"{percentage}% of {price} ({origin})"
    tiers = [(_decimal(tier["min_hours"]), _decimal(tier["fee"])) for tier in value]
    return to_cents(tier_fee(tiers, time_left)), f"fee tiers ({origin})"


def calculate_fee(policy: MergedPolicy, appointment: AppointmentFacts, now: datetime) -> PolicyResult:
    """The fee a change made at `now` would cost (ignores deadline and quota: see can_cancel)."""
    time_left = notice(appointment.starts_at, now)
    fee, why = fee_amount(policy, time_left, appointment.price)
    return PolicyResult(
        allowed=True,
        reason=why,
        fee=fee,
        currency=appointment.currency,
        hours_notice=hours(time_left),
        sources=_sources(policy),
    )


def _quota(policy: MergedPolicy, change: ModificationType, used: int) -> int | None:
    limit = policy.config.get(QUOTA_KEYS[change])
    if limit is None:  # not set, or set to null by a level: unlimited
        return None
    return max(int(limit) - used, 0)


def remaining_modifications(
    policy: MergedPolicy, change: ModificationType, used: int, currency: str
) -> PolicyResult:
    """How many more changes of this kind are left: for cancellations the customer's rolling 30 days,
    for reschedules the appointment's own count. `remaining_quota` None = unlimited."""
    left = _quota(policy, change, used)
    return PolicyResult(
        allowed=left is None or left > 0,
        reason=None if left is None or left > 0 else _quota_reason(policy, change, used),
        currency=currency,
        remaining_quota=left,
        sources=_sources(policy),
    )


def _quota_reason(policy: MergedPolicy, change: ModificationType, used: int) -> str:
    key = QUOTA_KEYS[change]
    source = policy.sources[key]
    limit = policy.config[key]
    scope = "in the last 30 days" if change is ModificationType.CANCEL else "for this appointment"
    return (
        f"{_NOUNS[change]} limit reached: {used} of {limit} {scope} "
        f"({key} from {source.level} {source.entity_id})"
    )


def _local(moment: datetime, time_zone: str) -> str:
    return moment.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M %Z")


def decide(
    policy: MergedPolicy,
    change: ModificationType,
    appointment: AppointmentFacts,
    now: datetime,
    used: int,
) -> PolicyResult:
    """May this change happen at `now`, and at what fee? `used`: the modifications already counted against
    the quota (customer's cancellations in 30 days, or this appointment's reschedules)."""
    time_left = notice(appointment.starts_at, now)
    sources = _sources(policy)
    remaining = _quota(policy, change, used)
    noun = _NOUNS[change]

    def deny(reason: str) -> PolicyResult:
        return PolicyResult(
            allowed=False,
            reason=reason,
            currency=appointment.currency,
            hours_notice=hours(time_left),
            remaining_quota=remaining,
            sources=sources,
        )

    if appointment.status in CLOSED_STATUSES:
        return deny(f"the appointment is {appointment.status}")
    if time_left <= timedelta(0):
        return deny("the appointment has already started")
    hours_before = policy.config.get("hours_before")
    if hours_before is not None and not _at_least(time_left, hours_before):
        source = policy.sources["hours_before"]
        deadline = appointment.starts_at - timedelta(hours=float(hours_before))
        return deny(
            f"{noun} needs {_decimal(hours_before).normalize():f} h notice, {hours(time_left):.2f} h left "
            f"(deadline was {_local(deadline, appointment.time_zone)}; "
            f"hours_before from {source.level} {source.entity_id})"
        )
    if remaining is not None and remaining <= 0:
        return deny(_quota_reason(policy, change, used))
    fee, why = fee_amount(policy, time_left, appointment.price)
    return PolicyResult(
        allowed=True,
        reason=why,
        fee=fee,
        currency=appointment.currency,
        hours_notice=hours(time_left),
        remaining_quota=remaining,
        sources=sources,
    )


def can_cancel(
    policy: MergedPolicy, appointment: AppointmentFacts, now: datetime, cancellations_30d: int
) -> PolicyResult:
    """`cancellations_30d`: the customer's cancellations in this company over the last 30 days."""
    return decide(policy, ModificationType.CANCEL, appointment, now, cancellations_30d)


def can_reschedule(
    policy: MergedPolicy, appointment: AppointmentFacts, now: datetime, reschedules: int
) -> PolicyResult:
    """`reschedules`: how often this appointment has been rescheduled already."""
    return decide(policy, ModificationType.RESCHEDULE, appointment, now, reschedules)
