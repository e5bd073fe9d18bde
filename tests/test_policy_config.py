"""A policy config is validated before it is stored: a bad one is refused with a message that names the
field and says what is wrong; a good one is stored with only the keys it gave (explicit nulls kept)."""

from __future__ import annotations

from typing import Any

import pytest

from models.callbacks import CallbackSettings
from models.policies import CallbackPolicy, PolicyConfigError, validate_config


@pytest.mark.parametrize(
    ("policy_type", "config", "message"),
    [
        ("cancellation", {"hours_befor": 24}, "hours_befor: unknown key (allowed keys: fee, fee_percentage"),
        ("cancellation", {"hours_before": -1}, "hours_before: Input should be greater than or equal to 0"),
        ("reschedule", {"fee_percentage": 120}, "fee_percentage: Input should be less than or equal to 100"),
        (
            "cancellation",
            {"fee_percentage": -5},
            "fee_percentage: Input should be greater than or equal to 0",
        ),
        (
            "cancellation",
            {
                "fee_tiers": [
                    {"min_hours": 0, "fee": 15},
                    {"min_hours": 48, "fee": 0},
                    {"min_hours": 24, "fee": 10},
                ]
            },
            "fee_tiers: tiers are not sorted",
        ),
        (
            "cancellation",
            {
                "fee_tiers": [
                    {"min_hours": 24, "fee": 10},
                    {"min_hours": 24, "fee": 5},
                    {"min_hours": 0, "fee": 1},
                ]
            },
            "fee_tiers: tiers overlap",
        ),
        ("cancellation", {"fee_tiers": [{"min_hours": 24, "fee": 10}]}, "it must start at 0"),
        ("cancellation", {"fee_tiers": []}, "at least one tier"),
        (
            "cancellation",
            {"fee_tiers": [{"min_hours": 0, "fee": 1, "max_hours": 3}]},
            "fee_tiers.0.max_hours",
        ),
        ("cancellation", {"fee": 10, "fee_percentage": 5}, "at most one of fee, fee_tiers, fee_percentage"),
        ("cancellation", {"fee": "1.234"}, "fee: Decimal input should have no more than 2 decimal places"),
        ("cancellation", {"max_cancellations_per_month": -1}, "max_cancellations_per_month"),
        ("callback", {"sla_hours": {"urgent": 0}}, "sla_hours.urgent"),
        ("callback", {"sla_hours": {"critical": 1}}, "sla_hours.critical"),
        ("callback", {"max_contact_attempts": 0}, "max_contact_attempts"),
        ("holiday", {}, "unknown policy type"),
    ],
)
def test_invalid_configs_are_refused_with_a_clear_message(
    policy_type: str, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyConfigError) as caught:
        validate_config(policy_type, config)
    assert message in str(caught.value)


def test_valid_config_keeps_only_given_keys_and_explicit_nulls() -> None:
    stored = validate_config(
        "cancellation", {"hours_before": 24, "max_cancellations_per_month": None, "fee": "12.50"}
    )
    assert stored == {"hours_before": 24.0, "max_cancellations_per_month": None, "fee": 12.5}
    assert validate_config("callback", {"sla_hours": {"urgent": 1}}) == {"sla_hours": {"urgent": 1.0}}


def test_callback_policy_keys_match_the_settings_it_overrides() -> None:
    assert set(CallbackPolicy.model_fields) == set(CallbackSettings.model_fields)
