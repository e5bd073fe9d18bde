"""Message texts: one layout per channel and language (files under templates/), one subject and summary
line per event and language (below), all rendered by Jinja2.

Admins may override the text of a message (`template_override`): it is rendered in a sandbox, since an
override is configuration typed into an API, not code we reviewed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

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


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    """A line template (or a company's override) compiled once per process, not at every delivery."""
    return _strings.from_string(source)


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


def _lines(planned: PlannedDelivery, values: dict[str, Any]) -> tuple[str, str]:
    locale = locale_of(planned)
    subject_template, summary_template = MESSAGES.get(planned.event.type, GENERIC)[locale]
    subject = _compiled(subject_template).render(values)
    summary = _compiled(planned.template_override or summary_template).render(values)
    return subject.strip(), summary.strip()


def render_email(planned: PlannedDelivery) -> RenderedEmail:
    values = context(planned)
    locale = locale_of(planned)
    subject, summary = _lines(planned, values)
    greeting_template = GREETING[locale] if values["name"] else GREETING_NO_NAME[locale]
    values.update(subject=subject, summary=summary, greeting=_compiled(greeting_template).render(values))
    return RenderedEmail(
        subject=subject,
        text=_files.get_template(f"{locale}/email.txt").render(values),
        html=_files.get_template(f"{locale}/email.html").render(values),
    )


def render_sms(planned: PlannedDelivery) -> str:
    values = context(planned)
    _, summary = _lines(planned, values)
    values["summary"] = summary
    return _files.get_template(f"{locale_of(planned)}/sms.txt").render(values).strip()
