"""Notification resolution rules and message texts, without I/O."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from channels.email import build_email
from channels.templates import render_sms
from channels.webhook import sign, verify
from models.callbacks import CallbackEvent, Priority
from models.notifications import (
    Audience,
    CatalogueEntry,
    Channel,
    NotificationSubject,
    NotifyEvent,
    PlannedDelivery,
    Recipient,
    RecipientType,
    delivery_message_id,
)
from rules.notifications import (
    People,
    QuietHours,
    RetryDefaults,
    StaffMember,
    events_to_notify,
    plan_deliveries,
    quiet_hours_end,
)

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietHours(time(22), time(7), "Europe/Berlin")
ALICE, BOB, CAROL = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
ENTRY = CatalogueEntry(
    event_type="callback.escalated",
    label="Callback escalated",
    category="sla",
    default_channels=[Channel.EMAIL, Channel.WEBHOOK],
    is_system_event=True,
    audience=[Audience.ASSIGNEE, Audience.PREVIOUS_ASSIGNEE, Audience.MANAGERS, Audience.WEBHOOK],
)
PEOPLE = People(
    staff={
        ALICE: StaffMember(ALICE, "Alice", email="alice@example.org", phone="+4930111"),
        BOB: StaffMember(BOB, "Bob", email="bob@example.org", phone="+4930222", locale="en"),
        CAROL: StaffMember(CAROL, "Carol", email="carol@example.org", active=False),
    },
    managers=[CAROL],
    webhook=Recipient(type=RecipientType.WEBHOOK, id="7", webhook_url="http://127.0.0.1:1/hook"),
)


def _event(at: datetime, priority: Priority = Priority.NORMAL, **payload: Any) -> NotifyEvent:
    return NotifyEvent(
        event_id="callback:x:3",
        type="callback.escalated",
        occurred_at=at,
        payload={"escalated_from": str(ALICE), "escalated_to": str(BOB), "reason": "sla_breach", **payload},
        subject=NotificationSubject(
            type="callback",
            id="x",
            company_id=7,
            branch_id=11,
            service_id=13,
            priority=priority,
            assigned_staff_id=BOB,
            customer_name="Erika Mustermann",
            customer_phone="+49301234567",
        ),
    )


def _plan(event: NotifyEvent, configs: Any = None, quiet: QuietHours | None = None) -> list[PlannedDelivery]:
    return plan_deliveries(event, ENTRY, PEOPLE, configs or {}, defaults=RetryDefaults(), quiet=quiet)


def _targets(planned: list[PlannedDelivery]) -> set[tuple[str, str]]:
    return {(p.recipient.key, p.channel.value) for p in planned}


NOON = datetime(2026, 3, 2, 12, 0, tzinfo=BERLIN).astimezone(UTC)


def test_an_escalation_reaches_new_and_previous_assignee_and_the_webhook_not_inactive_managers() -> None:
    assert _targets(_plan(_event(NOON))) == {
        (f"staff:{BOB}", "email"),
        (f"staff:{ALICE}", "email"),
        ("webhook:7", "webhook"),
    }


def test_staff_level_off_beats_company_level_on() -> None:
    configs = {
        Channel.EMAIL: {
            ("company", "7"): {"is_enabled": True, "retry_count": 5, "retry_delay_minutes": 1},
            ("staff", str(BOB)): {"is_enabled": False, "retry_count": 3, "retry_delay_minutes": 5},
        }
    }
    planned = _plan(_event(NOON), configs)
    assert _targets(planned) == {(f"staff:{ALICE}", "email"), ("webhook:7", "webhook")}
    alice = next(p for p in planned if p.recipient.id == str(ALICE))
    assert alice.retry_count == 5  # the company level still governs Alice


def test_a_disabled_channel_falls_back() -> None:
    configs = {Channel.EMAIL: {("branch", "11"): {"is_enabled": False, "fallback_channel": "sms"}}}
    planned = _plan(_event(NOON), configs)
    assert _targets(planned) == {
        (f"staff:{BOB}", "sms"),
        (f"staff:{ALICE}", "sms"),
        ("webhook:7", "webhook"),
    }
    assert {p.address for p in planned if p.channel is Channel.SMS} == {"+4930111", "+4930222"}


def test_the_fallback_is_not_used_when_it_is_switched_off_itself() -> None:
    configs = {
        Channel.EMAIL: {("company", "7"): {"is_enabled": False, "fallback_channel": "sms"}},
        Channel.SMS: {("staff", str(BOB)): {"is_enabled": False}},
    }
    assert _targets(_plan(_event(NOON), configs)) == {(f"staff:{ALICE}", "sms"), ("webhook:7", "webhook")}


def test_a_message_carries_its_fallback_for_when_its_channel_fails_for_good() -> None:
    configs = {
        Channel.EMAIL: {("company", "7"): {"fallback_channel": "sms", "retry_count": 1}},
        Channel.SMS: {("company", "7"): {"retry_count": 4}, ("staff", str(BOB)): {"is_enabled": False}},
    }
    planned = {p.recipient.key: p for p in _plan(_event(NOON), configs) if p.channel is Channel.EMAIL}
    alice = planned[f"staff:{ALICE}"]
    assert alice.retry_count == 1
    assert alice.fallback is not None
    assert (alice.fallback.channel, alice.fallback.address, alice.fallback.retry_count) == (
        Channel.SMS,
        "+4930111",
        4,
    )
    assert alice.fallback.message_id != alice.message_id  # a row of its own in the delivery log
    assert planned[f"staff:{BOB}"].fallback is None  # Bob switched SMS off
    # A recipient who gets SMS anyway gets no second one as a fallback.
    both = {Channel.EMAIL: configs[Channel.EMAIL], Channel.SMS: {("company", "7"): {"is_enabled": True}}}
    assert all(p.fallback is None for p in _plan(_event(NOON), both))


def test_a_disabled_or_unknown_event_sends_nothing() -> None:
    configs = {
        Channel.EMAIL: {("company", "7"): {"is_enabled": False}},
        Channel.WEBHOOK: {("company", "7"): {"is_enabled": False}},
    }
    assert _plan(_event(NOON), configs) == []
    inactive = ENTRY.model_copy(update={"is_active": False})
    assert plan_deliveries(_event(NOON), inactive, PEOPLE, {}, defaults=RetryDefaults(), quiet=None) == []
    assert plan_deliveries(_event(NOON), None, PEOPLE, {}, defaults=RetryDefaults(), quiet=None) == []


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 3, 2, 22, 30), datetime(2026, 3, 3, 7, 0)),
        (datetime(2026, 3, 2, 6, 59), datetime(2026, 3, 2, 7, 0)),
        (datetime(2026, 3, 2, 7, 0), None),
        (datetime(2026, 3, 2, 21, 59), None),
        # the night the clocks go forward: 22:30 CET → 07:00 CEST is 7.5 hours later
        (datetime(2026, 3, 28, 22, 30), datetime(2026, 3, 29, 7, 0)),
    ],
)
def test_quiet_hours_end_in_branch_local_time(local: datetime, expected: datetime | None) -> None:
    at = local.replace(tzinfo=BERLIN).astimezone(UTC)
    end = quiet_hours_end(at, NIGHT)
    assert end == (expected.replace(tzinfo=BERLIN) if expected else None)
    if end is not None:
        assert end.tzinfo is UTC


def test_quiet_hours_across_spring_forward_last_seven_and_a_half_hours() -> None:
    at = datetime(2026, 3, 28, 22, 30, tzinfo=BERLIN)
    end = quiet_hours_end(at, NIGHT)
    assert end is not None
    assert (end - at.astimezone(UTC)).total_seconds() == 7.5 * 3600


def test_a_daytime_window_and_no_window() -> None:
    lunch = QuietHours(time(12), time(13), "Europe/Berlin")
    assert quiet_hours_end(NOON, lunch) == datetime(2026, 3, 2, 13, tzinfo=BERLIN)
    assert quiet_hours_end(NOON, QuietHours(time(0), time(0), "Europe/Berlin")) is None


def test_quiet_hours_hold_people_not_machines_and_not_urgent_subjects() -> None:
    late = datetime(2026, 3, 2, 22, 30, tzinfo=BERLIN).astimezone(UTC)
    planned = _plan(_event(late), quiet=NIGHT)
    held = {p.recipient.type: p.not_before for p in planned}
    assert held[RecipientType.STAFF] == datetime(2026, 3, 3, 7, tzinfo=BERLIN)
    assert held[RecipientType.WEBHOOK] is None
    assert all(p.not_before is None for p in _plan(_event(late, Priority.URGENT), quiet=NIGHT))


def test_an_assignment_that_an_escalation_already_announces_is_not_notified_twice() -> None:
    at = NOON
    events = [
        CallbackEvent(seq=4, type="callback.escalated", payload={"escalated_to": str(BOB)}, at=at),
        CallbackEvent(seq=5, type="callback.assigned", payload={"staff_id": str(BOB)}, at=at),
        CallbackEvent(seq=6, type="callback.assigned", payload={"staff_id": str(ALICE)}, at=at),
    ]
    assert [e.seq for e in events_to_notify(events)] == [4, 6]


def test_ids_are_stable_per_event_recipient_and_channel() -> None:
    planned = _plan(_event(NOON))
    again = _plan(_event(NOON))
    assert [p.message_id for p in planned] == [p.message_id for p in again]
    assert len({p.message_id for p in planned}) == len(planned)
    bob_mail = next(p for p in planned if p.recipient.id == str(BOB))
    assert bob_mail.message_id == delivery_message_id("callback:x:3", f"staff:{BOB}", "email")
    first = build_email(bob_mail, sender="a@b.c", domain="callbacks.test")
    second = build_email(bob_mail, sender="a@b.c", domain="callbacks.test")
    assert first["Message-ID"] == second["Message-ID"] == f"<{bob_mail.message_id}@callbacks.test>"


def test_mails_are_rendered_in_the_recipients_language_as_text_and_html() -> None:
    planned = _plan(_event(NOON))
    german = next(p for p in planned if p.recipient.id == str(ALICE))
    english = next(p for p in planned if p.recipient.id == str(BOB))
    mail_de = build_email(german, sender="a@b.c", domain="d")
    mail_en = build_email(english, sender="a@b.c", domain="d")
    assert mail_de["Subject"] == "Rückruf eskaliert: Erika Mustermann"
    assert mail_en["Subject"] == "Callback escalated: Erika Mustermann"
    text = mail_de.get_body(("plain",))
    html = mail_de.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "Guten Tag Alice," in text.get_content()
    assert "Priorität: normal" in text.get_content()
    assert '<a href="tel:+49301234567">' in html.get_content()
    assert "Hello Bob," in str(mail_en.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def test_html_escapes_what_customers_typed() -> None:
    event = _event(NOON)
    event = event.model_copy(
        update={"subject": event.subject.model_copy(update={"customer_name": "<b>Eve</b>"})}
    )
    planned = _plan(event)[0]
    html = build_email(planned, sender="a@b.c", domain="d").get_body(("html",))
    assert html is not None
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html.get_content()


def test_a_template_override_replaces_the_summary_in_a_sandbox() -> None:
    planned = _plan(_event(NOON))[0].model_copy(
        update={"template_override": "Bitte {{ customer_name }} sofort anrufen ({{ payload.reason }})."}
    )
    assert render_sms(planned).startswith("Bitte Erika Mustermann sofort anrufen (sla_breach).")


def test_webhook_signature_is_hex_hmac_sha256_of_the_raw_body() -> None:
    signature = sign("s3cret", b'{"a":1}')
    assert signature == hmac.new(b"s3cret", b'{"a":1}', hashlib.sha256).hexdigest()
    assert verify("s3cret", b'{"a":1}', signature)
    assert not verify("other", b'{"a":1}', signature)
