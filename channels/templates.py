"""Message texts: one layout per channel and language (files under templates/), one subject and summary
line per event and language (below), all rendered by Jinja2.

Admins may override the summary line of a message (`template_override`): it is configuration typed into
an API, not code we reviewed, so it renders in a child process with bounds on time, output and memory
(channels/sandbox.py). The delivery activity renders it there without blocking its event loop and hands
the result in as `summary`; a synchronous caller without one gets it rendered there too, blocking only
its own thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from channels.sandbox import default_sandbox
from models.notifications import PlannedDelivery, RecipientType

LOCALES = ("de", "en")
DEFAULT_LOCALE = "de"

# event type → locale → (subject, summary); both are Jinja templates over the context of `context()`.
MESSAGES: dict[str, dict[str, tuple[str, str]]] = {
    "callback.created": {
        "de": (
            "Ihr Rückrufwunsch ist eingegangen",
            "Wir haben Ihren Rückrufwunsch erhalten und melden uns so bald wie möglich.",
        ),
        "en": (
            "We received your callback request",
            "We received your callback request and will call you soon.",
        ),
    },
    "callback.assigned": {
        "de": (
            "Neuer Rückruf: {{ customer_name }}",
            "Ihnen wurde ein Rückruf für {{ customer_name }} zugewiesen.",
        ),
        "en": ("New callback: {{ customer_name }}", "You were assigned a callback for {{ customer_name }}."),
    },
    "callback.sla_warning": {
        "de": (
            "Rückruf bald fällig: {{ customer_name }}",
            "{{ payload.percent }} % der Frist für den Rückruf an {{ customer_name }} sind verstrichen.",
        ),
        "en": (
            "Callback due soon: {{ customer_name }}",
            "{{ payload.percent }} % of the time for the callback to {{ customer_name }} has passed.",
        ),
    },
    "callback.escalated": {
        "de": (
            "Rückruf eskaliert: {{ customer_name }}",
            "Der Rückruf für {{ customer_name }} wurde eskaliert (Grund: {{ payload.reason }}).",
        ),
        "en": (
            "Callback escalated: {{ customer_name }}",
            "The callback for {{ customer_name }} was escalated (reason: {{ payload.reason }}).",
        ),
    },
    "callback.contacted": {
        "de": ("Kunde erreicht: {{ customer_name }}", "{{ customer_name }} wurde erreicht."),
        "en": ("Customer reached: {{ customer_name }}", "{{ customer_name }} was reached."),
    },
    "callback.attempt_failed": {
        "de": (
            "Kontaktversuch fehlgeschlagen: {{ customer_name }}",
            "Versuch {{ payload.number }}, {{ customer_name }} zu erreichen, ist fehlgeschlagen.",
        ),
        "en": (
            "Contact attempt failed: {{ customer_name }}",
            "Attempt {{ payload.number }} to reach {{ customer_name }} failed.",
        ),
    },
    "callback.completed": {
        "de": ("Rückruf erledigt: {{ customer_name }}", "Der Rückruf für {{ customer_name }} ist erledigt."),
        "en": (
            "Callback completed: {{ customer_name }}",
            "The callback for {{ customer_name }} is completed.",
        ),
    },
    "callback.cancelled": {
        "de": ("Rückruf storniert", "Der Rückruf für {{ customer_name }} wurde storniert."),
        "en": ("Callback cancelled", "The callback for {{ customer_name }} was cancelled."),
    },
    "callback.expired": {
        "de": (
            "Rückruf abgelaufen: {{ customer_name }}",
            "Der Rückruf für {{ customer_name }} ist nach allen Eskalationen abgelaufen.",
        ),
        "en": (
            "Callback expired: {{ customer_name }}",
            "The callback for {{ customer_name }} expired after every escalation.",
        ),
    },
    "callback.priority_changed": {
        "de": (
            "Priorität geändert: {{ customer_name }}",
            "Die Priorität des Rückrufs für {{ customer_name }} ist jetzt {{ payload.priority }}.",
        ),
        "en": (
            "Priority changed: {{ customer_name }}",
            "The callback for {{ customer_name }} now has priority {{ payload.priority }}.",
        ),
    },
    "appointment.cancelled": {
        "de": ("Termin storniert", "Der Termin von {{ customer_name }} wurde storniert."),
        "en": ("Appointment cancelled", "The appointment of {{ customer_name }} was cancelled."),
    },
    "appointment.rescheduled": {
        "de": ("Termin verschoben", "Der Termin von {{ customer_name }} wurde verschoben."),
        "en": ("Appointment rescheduled", "The appointment of {{ customer_name }} was moved."),
    },
}

GENERIC = {
    "de": ("Benachrichtigung: {{ event_type }}", "Ereignis {{ event_type }}."),
    "en": ("Notification: {{ event_type }}", "Event {{ event_type }}."),
}
GREETING = {"de": "Guten Tag {{ name }},", "en": "Hello {{ name }},"}
GREETING_NO_NAME = {"de": "Guten Tag,", "en": "Hello,"}
PRIORITY_LABELS = {
    "de": {"urgent": "dringend", "high": "hoch", "normal": "normal"},
    "en": {"urgent": "urgent", "high": "high", "normal": "normal"},
}

_files = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_strings = SandboxedEnvironment(autoescape=False)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def locale_of(planned: PlannedDelivery) -> str:
    locale = (planned.recipient.locale or DEFAULT_LOCALE).lower()[:2]
    return locale if locale in LOCALES else DEFAULT_LOCALE


def context(planned: PlannedDelivery) -> dict[str, Any]:
    """What templates may use. Customers are not shown internal details (priority, deadline)."""
    event, subject = planned.event, planned.event.subject
    locale = locale_of(planned)
    for_staff = planned.recipient.type is RecipientType.STAFF
    return {
        "event_type": event.type,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.strftime("%Y-%m-%d %H:%M UTC"),
        "payload": event.payload,
        "name": planned.recipient.name,
        "recipient_type": planned.recipient.type.value,
        "customer_name": subject.customer_name or "",
        "customer_phone": subject.customer_phone if for_staff else None,
        "priority": PRIORITY_LABELS[locale][subject.priority.value] if for_staff else None,
        "due_at": subject.due_at.strftime("%Y-%m-%d %H:%M UTC") if for_staff and subject.due_at else None,
        "subject_type": subject.type,
        "subject_id": subject.id,
    }


@lru_cache(maxsize=256)
def _ours(source: str) -> Template:
    """One of the texts above, compiled once."""
    return _strings.from_string(source)


# What `context()` gives a template, with made-up values: the save-time check renders an override over it.
SAMPLE_CONTEXT: dict[str, Any] = {
    "event_type": "callback.escalated",
    "event_id": "callback:00000000-0000-0000-0000-000000000000:1",
    "occurred_at": "2026-01-05 09:00 UTC",
    "payload": {"reason": "sla_breach", "percent": 75, "number": 1, "priority": "high"},
    "name": "Erika Mustermann",
    "recipient_type": "staff",
    "customer_name": "Max Mustermann",
    "customer_phone": "+493012345678",
    "priority": "hoch",
    "due_at": "2026-01-05 17:00 UTC",
    "subject_type": "callback",
    "subject_id": "00000000-0000-0000-0000-000000000000",
}


def _lines(planned: PlannedDelivery, values: dict[str, Any], summary: str | None) -> tuple[str, str]:
    """Subject and summary line. `summary`: the override, already rendered in the sandbox."""
    locale = locale_of(planned)
    subject_template, summary_template = MESSAGES.get(planned.event.type, GENERIC)[locale]
    subject = _ours(subject_template).render(values)
    if summary is None:
        summary = (
            default_sandbox().render_blocking(planned.template_override, values)
            if planned.template_override
            else _ours(summary_template).render(values)
        )
    return subject.strip(), summary.strip()


def render_email(planned: PlannedDelivery, summary: str | None = None) -> RenderedEmail:
    values = context(planned)
    locale = locale_of(planned)
    subject, summary = _lines(planned, values, summary)
    greeting_template = GREETING[locale] if values["name"] else GREETING_NO_NAME[locale]
    values.update(subject=subject, summary=summary, greeting=_ours(greeting_template).render(values))
    return RenderedEmail(
        subject=subject,
        text=_files.get_template(f"{locale}/email.txt").render(values),
        html=_files.get_template(f"{locale}/email.html").render(values),
    )


def render_sms(planned: PlannedDelivery, summary: str | None = None) -> str:
    values = context(planned)
    _, summary = _lines(planned, values, summary)
    values["summary"] = summary
    return _files.get_template(f"{locale_of(planned)}/sms.txt").render(values).strip()
