"""The console's words for the engine's own trouble (a callback whose workflow is stuck, models/stuck.py),
merged into the catalogue of console/i18n.py."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "de": {
        "stuck": "hängt",
        "stuck.title": "Der Schritt „{step}“ schlägt seit {since} fehl",
        "stuck.retrying": "Die Engine versucht es weiter ({rounds} Versuchsrunden, zuletzt {error}); "
        "Aktionen werden abgelehnt, bis der Schritt gelingt.",
        "stuck.gave_up": "Die Engine hat es am {at} aufgegeben und wartet auf den Betrieb "
        "(Signal retry_stuck, siehe docs/operations.md).",
    },
    "en": {
        "stuck": "stuck",
        "stuck.title": "The {step} step has been failing since {since}",
        "stuck.retrying": "The engine keeps retrying ({rounds} rounds of tries, last {error}); "
        "actions are refused until the step gets through.",
        "stuck.gave_up": "The engine gave up at {at} and waits for an operator "
        "(signal retry_stuck, see docs/operations.md).",
    },
}
