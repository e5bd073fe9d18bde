"""The callback rules that apply to one callback: settings defaults overlaid by a merged `callback` policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.callbacks import CallbackSettings, Priority


def apply_callback_policy(defaults: CallbackSettings, policy: Mapping[str, Any]) -> CallbackSettings:
    """`sla_hours` merges per priority (a policy may change only `urgent`); every other key replaces."""
    sla_hours = dict(defaults.sla_hours)
    for priority, hours in (policy.get("sla_hours") or {}).items():
        sla_hours[Priority(priority)] = float(hours)
    known = {
        "auto_assign",
        "escalation_cooldown_hours",
        "max_contact_attempts",
        "max_escalations",
        "sla_clock",
    }
    overrides = {key: value for key, value in policy.items() if key in known and value is not None}
    return CallbackSettings.model_validate({**defaults.model_dump(), **overrides, "sla_hours": sla_hours})
