"""The console's words for SLA clocks and dial windows, merged into the catalogue of console/i18n.py."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "de": {
        "filter.callable": "Jetzt anrufbar",
        "callable.later": "anrufbar ab {at}",
        "detail.sla_clock": "SLA-Uhr",
        "sla_clock.calendar": "Kalenderzeit",
        "sla_clock.business_hours": "Geschäftszeiten der Filiale",
        "detail.callable": "Anrufbar",
        "detail.callable_now": "jetzt",
        "detail.callable_at": "ab {at}",
        "detail.dial_window": "Anrufzeiten des Kunden",
        "dash.sla_by_clock": "{clock}: {rate} ({on_time} von {completed})",
    },
    "en": {
        "filter.callable": "Callable now",
        "callable.later": "callable from {at}",
        "detail.sla_clock": "SLA clock",
        "sla_clock.calendar": "calendar time",
        "sla_clock.business_hours": "the branch's business hours",
        "detail.callable": "Callable",
        "detail.callable_now": "now",
        "detail.callable_at": "from {at}",
        "detail.dial_window": "Customer's dial window",
        "dash.sla_by_clock": "{clock}: {rate} ({on_time} of {completed})",
    },
}
