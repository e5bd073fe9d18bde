"""The pure policy rules: decisions, fees, notice across DST (examples + properties); the validation of
stored configs: test_policy_config.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.policies import (
    ModificationType,
    validate_config,
)
from rules.policy import (
    AppointmentFacts,
    calculate_fee,
    can_cancel,
    can_reschedule,
    fee_amount,
    notice,
    remaining_modifications,
    tier_fee,
)
from rules.policy_merge import LEVELS, MergedPolicy, PolicyLayer, merge_layers

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def merged(*layers: tuple[str, dict[str, Any]]) -> MergedPolicy:
    return merge_layers([PolicyLayer(level, f"{level}-1", config) for level, config in layers])


def appointment(hours_ahead: float, price: str = "80.00", status: str = "scheduled") -> AppointmentFacts:
    return AppointmentFacts(
        starts_at=NOW + timedelta(hours=hours_ahead),
        price=Decimal(price),
        currency="EUR",
        time_zone="Europe/Berlin",
        status=status,
    )


# --- seed edge cases ---------------------------------------------------------------------------


def test_no_policy_allows_with_zero_fee() -> None:
    result = can_cancel(MergedPolicy(), appointment(1), NOW, cancellations_30d=50)
    assert result.allowed
    assert result.fee == Decimal("0.00")
    assert result.currency == "EUR"
    assert result.remaining_quota is None
    assert result.sources == {}


def test_null_quota_means_unlimited_even_over_a_company_limit() -> None:
    policy = merged(
        ("company", {"max_cancellations_per_month": 2, "fee": 5}),
        ("staff", {"max_cancellations_per_month": None}),
    )
    result = can_cancel(policy, appointment(72), NOW, cancellations_30d=1000)
    assert result.allowed
    assert result.remaining_quota is None
    assert result.sources["max_cancellations_per_month"].level == "staff"


def test_quota_reached_is_refused_with_the_level_that_set_it() -> None:
    policy = merged(("branch", {"max_cancellations_per_month": 3, "fee": 0}))
    assert can_cancel(policy, appointment(72), NOW, cancellations_30d=2).remaining_quota == 1
    result = can_cancel(policy, appointment(72), NOW, cancellations_30d=3)
    assert not result.allowed
    assert result.remaining_quota == 0
    assert result.reason is not None
    assert "3 of 3 in the last 30 days" in result.reason
    assert "branch branch-1" in result.reason


def test_deadline_from_hours_before() -> None:
    policy = merged(("company", {"hours_before": 24, "fee": 0}))
    assert can_cancel(policy, appointment(24), NOW, 0).allowed
    refused = can_cancel(policy, appointment(23.5), NOW, 0)
    assert not refused.allowed
    assert refused.fee == 0
    assert refused.hours_notice == pytest.approx(23.5)
    assert refused.reason is not None
    # The deadline is shown in the branch's time zone (CEST in June).
    assert "deadline was 2026-06-01 13:30 CEST" in refused.reason


def test_started_or_closed_appointments_cannot_change_even_without_policy() -> None:
    assert not can_cancel(MergedPolicy(), appointment(0), NOW, 0).allowed
    assert not can_cancel(MergedPolicy(), appointment(-1), NOW, 0).allowed
    closed = can_reschedule(MergedPolicy(), appointment(48, status="cancelled"), NOW, 0)
    assert not closed.allowed
    assert closed.reason == "the appointment is cancelled"


def test_reschedule_limit_is_per_appointment() -> None:
    policy = merged(("service", {"max_reschedules_per_appointment": 2, "fee": 0}))
    assert can_reschedule(policy, appointment(72), NOW, reschedules=1).allowed
    refused = can_reschedule(policy, appointment(72), NOW, reschedules=2)
    assert not refused.allowed
    assert refused.reason is not None
    assert "for this appointment" in refused.reason


# --- fees ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours_ahead", "fee"),
    [
        (72, "0.00"),
        (48, "0.00"),  # exactly 48 h: the ≥ 48 h tier
        (48 - 1 / 3600, "10.00"),  # one second less
        (24, "10.00"),  # exactly 24 h: the 24–48 h tier
        (24 - 1 / 3600, "15.00"),
        (1, "15.00"),
    ],
)
def test_default_tier_boundaries(hours_ahead: float, fee: str) -> None:
    # A policy that exists but names no fee rule charges the default tiers.
    policy = merged(("company", {"max_cancellations_per_month": 5}))
    result = can_cancel(policy, appointment(hours_ahead), NOW, 0)
    assert result.allowed
    assert result.fee == Decimal(fee)
    assert result.reason == "default fee tiers"


def test_exact_boundaries_at_microsecond_precision() -> None:
    tiers = [(Decimal(48), Decimal(0)), (Decimal(24), Decimal(10)), (Decimal(0), Decimal(15))]
    assert tier_fee(tiers, timedelta(hours=48)) == 0
    assert tier_fee(tiers, timedelta(hours=48) - timedelta(microseconds=1)) == 10
    assert tier_fee(tiers, timedelta(hours=24)) == 10
    assert tier_fee(tiers, timedelta(hours=24) - timedelta(microseconds=1)) == 15


def test_configured_tiers_in_either_order() -> None:
    ascending = merged(
        ("company", {"fee_tiers": [{"min_hours": 0, "fee": 20}, {"min_hours": 12, "fee": 7.5}]})
    )
    descending = merged(
        ("company", {"fee_tiers": [{"min_hours": 12, "fee": 7.5}, {"min_hours": 0, "fee": 20}]})
    )
    for policy in (ascending, descending):
        assert calculate_fee(policy, appointment(12), NOW).fee == Decimal("7.50")
        assert calculate_fee(policy, appointment(11.99), NOW).fee == Decimal("20.00")


@pytest.mark.parametrize(
    ("price", "percentage", "fee"),
    [
        ("80.00", 15, "12.00"),
        ("19.99", 15, "3.00"),  # 2.9985 → 3.00
        ("33.33", 50, "16.67"),  # 16.665 → half up → 16.67 (banker's rounding would give 16.66)
        ("0.05", 50, "0.03"),  # 0.025 → 0.03
        ("99.99", 12.5, "12.50"),  # 12.49875 → 12.50
        ("10.01", 100, "10.01"),
    ],
)
def test_percentage_fee_on_prices_with_cents(price: str, percentage: float, fee: str) -> None:
    policy = merged(("service", {"fee_percentage": percentage}))
    result = calculate_fee(policy, appointment(10, price=price), NOW)
    assert result.fee == Decimal(fee)
    assert result.fee.as_tuple().exponent == -2


def test_most_specific_fee_rule_wins_across_levels() -> None:
    policy = merged(
        ("company", {"fee_tiers": [{"min_hours": 0, "fee": 15}]}),
        ("branch", {"fee_percentage": 10}),
        ("staff", {"fee": 4.5}),
    )
    fee, why = fee_amount(policy, timedelta(hours=5), Decimal("100"))
    assert fee == Decimal("4.50")
    assert why == "fixed fee (staff staff-1)"
    without_staff = merged(
        ("company", {"fee_tiers": [{"min_hours": 0, "fee": 15}]}), ("branch", {"fee_percentage": 10})
    )
    assert fee_amount(without_staff, timedelta(hours=5), Decimal("100"))[0] == Decimal("10.00")


def test_fee_zero_opts_out_of_default_tiers() -> None:
    policy = merged(("company", {"hours_before": 2, "fee": 0}))
    assert can_cancel(policy, appointment(3), NOW, 0).fee == Decimal("0.00")


# --- daylight saving time -----------------------------------------------------------------------


def test_notice_ten_minutes_before_and_just_after_the_spring_switch() -> None:
    # Europe/Berlin, 29 March 2026: clocks jump from 02:00 CET to 03:00 CEST.
    starts_at = datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN)  # 07:00 UTC
    before_switch = datetime(2026, 3, 29, 1, 50, tzinfo=BERLIN)  # 00:50 UTC, 10 minutes before
    after_switch = datetime(2026, 3, 29, 3, 1, tzinfo=BERLIN)  # 01:01 UTC, 1 minute after
    assert notice(starts_at, before_switch) == timedelta(hours=6, minutes=10)  # wall clock says 7:10
    assert notice(starts_at, after_switch) == timedelta(hours=5, minutes=59)
    # Python's same-zone subtraction would use wall clocks and be an hour off:
    assert starts_at - before_switch == timedelta(hours=7, minutes=10)

    policy = merged(("branch", {"hours_before": 6.5, "fee": 0}))
    facts = AppointmentFacts(starts_at, Decimal("50"), "EUR", "Europe/Berlin")
    result = can_cancel(policy, facts, before_switch, 0)
    assert not result.allowed  # 6 h 10 min of real notice, not 7 h 10 min
    assert result.hours_notice == pytest.approx(6 + 10 / 60)


def test_notice_around_the_autumn_switch_and_tier_boundary() -> None:
    # 25 October 2026: clocks fall back from 03:00 CEST to 02:00 CET; the night has 25 hours.
    starts_at = datetime(2026, 10, 25, 12, 0, tzinfo=BERLIN)  # 11:00 UTC
    ten_before = datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN)  # 10:00 UTC: same wall clock, 25 h earlier
    assert notice(starts_at, ten_before) == timedelta(hours=25)
    policy = merged(("company", {"max_cancellations_per_month": None}))  # default tiers
    facts = AppointmentFacts(starts_at, Decimal("50"), "EUR", "Europe/Berlin")
    # Exactly 24 h of real notice is 11:00 local the day before, not 12:00.
    at_24h = datetime(2026, 10, 24, 13, 0, tzinfo=BERLIN)
    assert notice(starts_at, at_24h) == timedelta(hours=24)
    assert can_cancel(policy, facts, at_24h, 0).fee == Decimal("10.00")
    assert can_cancel(policy, facts, at_24h + timedelta(seconds=1), 0).fee == Decimal("15.00")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        notice(datetime(2026, 1, 1, 12, 0), NOW)


def test_remaining_modifications() -> None:
    policy = merged(("company", {"max_cancellations_per_month": 3}))
    assert remaining_modifications(policy, ModificationType.CANCEL, 1, "EUR").remaining_quota == 2
    used_up = remaining_modifications(policy, ModificationType.CANCEL, 4, "EUR")
    assert used_up.remaining_quota == 0
    assert not used_up.allowed
    unlimited = remaining_modifications(policy, ModificationType.RESCHEDULE, 9, "EUR")
    assert unlimited.remaining_quota is None
    assert unlimited.allowed


# --- properties ----------------------------------------------------------------------------------

levels = st.sampled_from(LEVELS)
keys = st.sampled_from(["hours_before", "fee", "max_cancellations_per_month", "a", "b"])
layer_sets = st.dictionaries(levels, st.dictionaries(keys, st.integers(0, 100), max_size=5), max_size=4)


@given(layer_sets)
def test_merge_takes_each_key_from_the_most_specific_level_that_sets_it(
    layers: dict[str, dict[str, int]],
) -> None:
    result = merge_layers([PolicyLayer(level, f"{level}-id", config) for level, config in layers.items()])
    all_keys = {key for config in layers.values() for key in config}
    assert set(result.config) == all_keys
    for key in all_keys:
        winner = next(level for level in LEVELS if key in layers.get(level, {}))
        assert result.config[key] == layers[winner][key]
        assert result.sources[key].level == winner
        assert result.sources[key].entity_id == f"{winner}-id"


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
zones = st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"])


@given(instants, instants, zones, zones)
def test_notice_is_absolute_time_whatever_the_zone(
    a: datetime, b: datetime, zone_a: str, zone_b: str
) -> None:
    local_a = a.astimezone(ZoneInfo(zone_a))
    local_b = b.astimezone(ZoneInfo(zone_b))
    assert notice(local_a, local_b) == a - b
    assert notice(local_a, local_a.astimezone(ZoneInfo(zone_a))) == timedelta(0)


tier_lists = st.lists(
    st.tuples(
        st.integers(1, 24 * 30),
        st.decimals(min_value=0, max_value=500, places=2, allow_nan=False, allow_infinity=False),
    ),
    max_size=5,
    unique_by=lambda tier: tier[0],
).map(lambda tiers: [(0, Decimal("99.00")), *tiers])
notices = st.integers(0, 24 * 40 * 3600).map(lambda seconds: timedelta(seconds=seconds))


@given(tier_lists, notices, st.booleans())
def test_tier_fee_is_the_highest_reached_tier(
    tiers: list[tuple[int, Decimal]], time_left: timedelta, ascending: bool
) -> None:
    ordered = sorted(tiers, reverse=not ascending)
    config = {"fee_tiers": [{"min_hours": h, "fee": str(fee)} for h, fee in ordered]}
    validate_config("cancellation", config)  # every such list is a valid config
    expected = max((t for t in tiers if timedelta(hours=t[0]) <= time_left), key=lambda t: t[0])[1]
    fee, _ = fee_amount(merged(("company", config)), time_left, Decimal(0))
    assert fee == expected


@given(
    st.decimals(min_value=0, max_value=99_999_999, places=2, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False),
)
def test_percentage_fee_is_rounded_half_up_to_cents(price: Decimal, percentage: Decimal) -> None:
    fee, _ = fee_amount(merged(("company", {"fee_percentage": str(percentage)})), timedelta(hours=1), price)
    exact = price * percentage / 100
    assert fee.as_tuple().exponent == -2
    assert Decimal(0) <= fee <= price
    assert exact - Decimal("0.005") < fee <= exact + Decimal("0.005")


@given(
    st.integers(-10, 24 * 10),
    st.one_of(st.none(), st.integers(0, 72)),
    st.one_of(st.none(), st.integers(0, 5)),
    st.integers(0, 8),
)
def test_an_allowed_cancel_meets_deadline_and_quota(
    hours_ahead: int, hours_before: int | None, limit: int | None, used: int
) -> None:
    config: dict[str, Any] = {"max_cancellations_per_month": limit}
    if hours_before is not None:
        config["hours_before"] = hours_before
    result = can_cancel(merged(("company", config)), appointment(hours_ahead), NOW, used)
    meets_deadline = hours_ahead > 0 and (hours_before is None or hours_ahead >= hours_before)
    within_quota = limit is None or used < limit
    assert result.allowed == (meets_deadline and within_quota)
    assert result.allowed or result.reason
    assert result.allowed or result.fee == 0
    assert result.remaining_quota == (None if limit is None else max(limit - used, 0))
