"""Notifications whose outside world misbehaves: an SMTP server that takes 70 s per mail, a webhook
receiver that is down and comes back, and a tenant whose message template would render for ever.

Deliveries are counted where they arrive (the SMTP sink by Message-ID, the webhook receiver by
X-Event-Id) and compared with the delivery log (`notification_deliveries`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from sqlalchemy import select, update

from chaos.checks import until, workflow_health
from chaos.lab import Lab
from chaos.scenario import Outcome, Scenario
from chaos.scenarios.common import create_many, new_callback
from devstack.harness import free_port
from devstack.sinks import MailSink, WebhookSink, serve_smtp_sink
from devstack.tenants import SeededTenant, seed_tenant
from models.callbacks import Complete, Priority
from models.tables import Company, NotificationConfiguration, NotificationDelivery
from store.db import transaction
from store.notification_settings import set_notification_setting

MESSAGE_ID_DOMAIN = "chaos.invalid"
# The template: 99 999² iterations, far beyond any render budget.
TEMPLATE_BOMB = "{% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}"
FINAL = ("sent", "failed")


# What a new callback tells: the customer and the company webhook hear of it, its assignee and the
# webhook of the assignment.
NEW_CALLBACK_EVENTS = ("callback.created", "callback.assigned")


async def tenant_with_setting(
    lab: Lab, channel: str, *, retry_count: int, retry_delay_minutes: int
) -> SeededTenant:
    """A tenant whose messages of a new callback on `channel` are retried so (company level)."""
    async with transaction(lab.sessions) as session:
        tenant = await seed_tenant(session, name=f"Chaos {lab.name}", staff=2, linked=2)
        for event_type in NEW_CALLBACK_EVENTS:
            await set_notification_setting(
                session,
                company_id=tenant.company_id,
                level="company",
                entity_id=tenant.company_id,
                event_type=event_type,
                channel=channel,
                retry_count=retry_count,
                retry_delay_minutes=retry_delay_minutes,
            )
    return tenant


async def deliveries(lab: Lab, company_id: int, channel: str) -> list[NotificationDelivery]:
    async with lab.sessions() as session:
        found = await session.scalars(
            select(NotificationDelivery).where(
                NotificationDelivery.company_id == company_id, NotificationDelivery.channel == channel
            )
        )
        return list(found)


def _exactly_once(out: Outcome, expected: Sequence[str], copies: dict[str, int], what: str) -> None:
    out.figure("deliveries", len(expected))
    out.figure("received", sum(copies.get(key, 0) for key in expected))
    out.add_lost(sum(1 for key in expected if not copies.get(key)), f"{what} never delivered")
    out.add_duplicated(sum(max(0, copies.get(key, 0) - 1) for key in expected), f"extra copies of {what}")


async def smtp_slow(lab: Lab, out: Outcome) -> None:
    count = 3
    sink = MailSink(answer_delay=70)
    smtp = await lab.exit.enter_async_context(serve_smtp_sink(sink))
    # The company retries a failed mail after 1 s (retry delay 0, the engine's floor), so a second
    # attempt started while the first still waits for the server would show at once.
    tenant = await tenant_with_setting(lab, "email", retry_count=3, retry_delay_minutes=0)
    # The engine waits longer than the server needs (120 s > 70 s): each attempt really runs 70 s.
    await lab.start_worker(
        {
            "SMTP_URL": smtp,
            "CALLBACKS_NOTIFY_SMTP_TIMEOUT_SECONDS": "120",
            "CALLBACKS_NOTIFY_MESSAGE_ID_DOMAIN": MESSAGE_ID_DOMAIN,
        }
    )
    started = time.monotonic()
    requests = [new_callback(tenant, n, email=f"c{n}@chaos.example") for n in range(count)]
    await create_many(lab, requests, out=out)

    async def settled() -> bool:
        rows = await deliveries(lab, tenant.company_id, "email")
        return (
            time.monotonic() - started > 75
            and sink.answering == 0
            and len(rows) == count
            and all(row.status in FINAL for row in rows)
        )

    # A server answering in 70 s and an engine that sends each mail once settle well within 110 s.
    await until(settled, 110 - (time.monotonic() - started), interval=1.0)
    rows = await deliveries(lab, tenant.company_id, "email")
    expected = [f"<{row.message_id}@{MESSAGE_ID_DOMAIN}>" for row in rows]
    _exactly_once(out, expected, dict(sink.copies()), "mails")
    out.figure("sent_rows", sum(1 for row in rows if row.status == "sent"))
    out.check(len(rows) == count, f"{len(rows)} delivery rows for {count} mails")
    out.check(all(row.status == "sent" for row in rows), f"delivery rows: {[row.status for row in rows]}")
    (await workflow_health(lab)).report(out)


async def webhook_down(lab: Lab, out: Outcome) -> None:
    count, down_seconds = 5, 12
    secret = "whsec-chaos-0123456789"
    sink = WebhookSink(secret)
    port = free_port()  # nothing listens here yet: the receiver is down
    # Retried every second (retry delay 0, the engine's floor) up to 20 times: the policy covers the
    # 12 s outage (the 2 minutes, shortened so the run stays short).
    tenant = await tenant_with_setting(lab, "webhook", retry_count=20, retry_delay_minutes=0)
    async with transaction(lab.sessions) as session:
        await session.execute(
            update(Company)
            .where(Company.id == tenant.company_id)
            .values(webhook_url=f"http://127.0.0.1:{port}/hook", webhook_secret=secret)
        )
    await lab.start_worker()
    await create_many(lab, [new_callback(tenant, n) for n in range(count)], out=out)
    await asyncio.sleep(down_seconds)
    out.figure(
        "attempts_while_down",
        sum(row.attempts for row in await deliveries(lab, tenant.company_id, "webhook")),
    )
    await lab.exit.enter_async_context(sink.serve(port))

    async def all_sent() -> bool:
        rows = await deliveries(lab, tenant.company_id, "webhook")
        return bool(rows) and all(row.status in FINAL for row in rows)

    await until(all_sent, 60, interval=0.5)
    await asyncio.sleep(3)  # a late duplicate would arrive now
    rows = await deliveries(lab, tenant.company_id, "webhook")
    _exactly_once(out, [str(row.message_id) for row in rows], dict(sink.copies()), "webhooks")
    out.figure("sent_rows", sum(1 for row in rows if row.status == "sent"))
    out.check(all(row.status == "sent" for row in rows), f"delivery rows: {[row.status for row in rows]}")
    out.check(not any(valid is False for _, valid in sink.received), "a webhook arrived with a bad signature")
    (await workflow_health(lab)).report(out)


async def template_bomb(lab: Lab, out: Outcome) -> None:
    sink = MailSink()
    smtp = await lab.exit.enter_async_context(serve_smtp_sink(sink))
    async with transaction(lab.sessions) as session:
        bomb = await seed_tenant(session, name="Chaos bomb", staff=2, linked=2)
        other = await seed_tenant(session, name="Chaos neighbour", staff=2, linked=2)
        # Stored as a row (an import, or a row from before any check at the API): the delivery itself
        # must stop the render.
        session.add(
            NotificationConfiguration(
                company_id=bomb.company_id,
                configurable_type="company",
                configurable_id=str(bomb.company_id),
                event_type="callback.created",
                channel="email",
                is_enabled=True,
                retry_count=1,
                retry_delay_minutes=0,
                template_override=TEMPLATE_BOMB,
            )
        )
    await lab.start_worker({"SMTP_URL": smtp})
    await create_many(lab, [new_callback(bomb, 0, email="victim@chaos.example")], key="bomb", out=out)

    async def rendering() -> bool:
        return bool(await deliveries(lab, bomb.company_id, "email"))

    out.check(await until(rendering, 30), "the bomb's delivery never started")
    # Meanwhile another tenant's callbacks live their lives: created, then completed.
    lifecycles: list[float] = []

    async def lifecycle(n: int) -> None:
        started = time.monotonic()
        state = (await create_many(lab, [new_callback(other, n, priority=Priority.HIGH)], key=f"other{n}"))[0]
        await lab.callbacks.act(state.workflow_id, Complete(notes="called back"))
        lifecycles.append(time.monotonic() - started)

    try:
        async with asyncio.timeout(30):
            for n in range(5):
                await lifecycle(n)
    except TimeoutError:
        pass
    out.figure("neighbour_lifecycles", f"{len(lifecycles)}/5")
    out.figure("slowest_lifecycle_s", max(lifecycles, default=0.0))
    out.add_lost(5 - len(lifecycles), "neighbour callback lifecycles that did not finish within 30 s")

    async def failed_with_reason() -> bool:
        rows = await deliveries(lab, bomb.company_id, "email")
        return bool(rows) and all(row.status == "failed" and row.last_error for row in rows)

    defined = await until(failed_with_reason, 20)
    rows = await deliveries(lab, bomb.company_id, "email")
    out.figure(
        "bomb_delivery", ",".join(f"{row.status}:{(row.last_error or '-')[:40]}" for row in rows) or "-"
    )
    out.add_lost(0 if defined else 1, "bomb deliveries without a defined failure and a reason")
    (await workflow_health(lab)).report(out)


SCENARIOS = [
    Scenario(
        "smtp-slow",
        "an SMTP server that takes 70 s to answer each mail (retries 1 s apart): every notification mail "
        "arrives exactly once, no second attempt while the first still runs, every delivery row `sent`",
        smtp_slow,
        budget_seconds=240,
    ),
    Scenario(
        "webhook-down",
        "the company's webhook receiver down for 12 s (the issue's 2 minutes, shortened to what a 1 s × "
        "20 retry policy covers), then up: every webhook delivered exactly once, signed, rows `sent`",
        webhook_down,
        budget_seconds=150,
    ),
    Scenario(
        "template-bomb",
        "a tenant's mail template that would render 10¹⁰ loops: that delivery fails with a reason, and "
        "another tenant's callbacks keep moving (5 create+complete lifecycles alongside)",
        template_bomb,
        budget_seconds=180,
    ),
]
