"""What the notification tests share: a tenant whose people have addresses, a real SMTP sink, a real
webhook receiver that checks signatures, the fake SMS gateway, and a worker wired to all of them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.notifications import NotificationActivities, NotificationConfig
from channels.webhook import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, standard_secret, verify
from config import Settings
from devstack.sinks import FakeSmsGateway, MailSink, serve_smtp_sink
from models.callbacks import CallbackEvent, CallbackSettings, CallbackState, NewCallback, Priority
from models.notifications import DeliveryOutcome, NotifyEvent
from models.tables import Company, NotificationDelivery, Staff
from store import notification_settings as settings_store
from store.db import transaction
from telemetry.asgi_server import serve_asgi
from tests.factories import Tenant, add_staff, make_tenant
from workflows.notifications import NotifyEventWorkflow

Sessions = async_sessionmaker[AsyncSession]
SECRET = "whsec-test-0123456789"


@dataclass
class People:
    tenant: Tenant
    alice: uuid.UUID  # the previous assignee
    bob: uuid.UUID  # the new assignee (English)
    manager: uuid.UUID


async def notify_tenant(sessions: Sessions, webhook_url: str | None = None) -> People:
    tenant = await make_tenant(sessions)
    alice = await add_staff(sessions, tenant)
    bob = await add_staff(sessions, tenant)
    manager = await add_staff(sessions, tenant)
    async with transaction(sessions) as session:
        for staff_id, name, locale in ((alice, "alice", "de"), (bob, "bob", "en"), (manager, "mia", "de")):
            await session.execute(
                update(Staff)
                .where(Staff.id == staff_id)
                .values(
                    name=name.title(),
                    email=f"{name}@praxis.example",
                    phone_number=f"+49301000{len(name)}{staff_id.int}",
                    locale=locale,
                    is_manager=staff_id == manager,
                )
            )
        await session.execute(
            update(Company)
            .where(Company.id == tenant.company_id)
            .values(webhook_url=webhook_url, webhook_secret=SECRET)
        )
    return People(tenant, alice, bob, manager)


def callback_state(people: People, *, priority: Priority = Priority.NORMAL, at: datetime) -> CallbackState:
    tenant = people.tenant
    return CallbackState(
        id=uuid.uuid4(),
        request=NewCallback(
            company_id=tenant.company_id,
            branch_id=tenant.branch_ids[0],
            service_id=tenant.service_ids[0],
            customer_name="Erika Mustermann",
            phone_number="+49 30 1234567",
            priority=priority,
        ),
        settings=CallbackSettings(
            sla_hours={Priority.URGENT: 2, Priority.HIGH: 4, Priority.NORMAL: 24},
            escalation_cooldown_hours=4,
            max_contact_attempts=3,
            max_escalations=3,
        ),
        priority=priority,
        created_at=at,
        expires_at=at,
        assigned_to=people.bob,
        previous_assignees=[people.alice],
    )


def escalation(people: People, at: datetime, seq: int = 7) -> CallbackEvent:
    return CallbackEvent(
        seq=seq,
        type="callback.escalated",
        payload={
            "number": 1,
            "reason": "sla_breach",
            "escalated_from": str(people.alice),
            "escalated_to": str(people.bob),
        },
        actor="sla-clock",
        at=at,
    )


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP receiver: verifies the Standard Webhooks signature with the `standardwebhooks` library
    and the deprecated `X-Signature-256` (401 when either is wrong), answers from `script` (then 200), and
    hangs forever when `hang` is set, until `release` is set."""

    script: list[int] = field(default_factory=list)
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        ok = verify(SECRET, body, request.headers.get(SIGNATURE_HEADER, "")) and _standard_ok(body, request)
        self.received.append(Received(dict(request.headers), body, ok))
        self.arrived.set()
        if self.hang:
            await self.release.wait()
        if not ok:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        status = self.script.pop(0) if self.script else 200
        return JSONResponse({"status": status}, status_code=status)

    def event_ids(self) -> list[str]:
        return [r.headers[EVENT_ID_HEADER.lower()] for r in self.received]

    def timestamps(self) -> list[str]:
        return [r.headers[TIMESTAMP_HEADER.lower()] for r in self.received]


def _standard_ok(body: bytes, request: Request) -> bool:
    try:
        Webhook(standard_secret(SECRET)).verify(body, dict(request.headers))
    except WebhookVerificationError:
        return False
    return True


@dataclass
class Outside:
    mail: MailSink
    sms: FakeSmsGateway
    hook: WebhookReceiver
    smtp_url: str
    sms_url: str
    hook_url: str

    def settings(self, task_queue: str, **overrides: Any) -> Settings:
        return Settings(
            task_queue=task_queue,
            smtp_url=self.smtp_url,
            notify_sms_gateway_url=self.sms_url,
            notify_message_id_domain="callbacks.test",
            **overrides,
        )


@asynccontextmanager
async def outside_world(hook: WebhookReceiver | None = None) -> AsyncIterator[Outside]:
    mail, sms, receiver = MailSink(), FakeSmsGateway(), hook or WebhookReceiver()
    async with AsyncExitStack() as stack:
        smtp_url = await stack.enter_async_context(serve_smtp_sink(mail))
        sms_base = await stack.enter_async_context(serve_asgi(sms.app))
        hook_base = await stack.enter_async_context(serve_asgi(receiver.app()))
        try:
            yield Outside(mail, sms, receiver, smtp_url, f"{sms_base}/messages", f"{hook_base}/hook")
        finally:
            receiver.release.set()


@asynccontextmanager
async def notify_worker(
    client: Client,
    sessions: Sessions,
    settings: Settings,
    *,
    workflows: Sequence[type] = (),
    activities: Sequence[Any] | None = None,
) -> AsyncIterator[NotificationActivities]:
    """A worker with the notification workflow and activities (or replacements for some of them)."""
    real = NotificationActivities(sessions, NotificationConfig.from_settings(settings))
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[NotifyEventWorkflow, *workflows],
        activities=list(activities) if activities is not None else real.all(),
        graceful_shutdown_timeout=timedelta(seconds=1),
    ):
        yield real


async def deliveries(sessions: Sessions, company_id: int) -> list[NotificationDelivery]:
    async with sessions() as session:
        rows = await session.scalars(
            select(NotificationDelivery)
            .where(NotificationDelivery.company_id == company_id)
            .order_by(NotificationDelivery.recipient, NotificationDelivery.channel)
        )
        return list(rows)


async def run_notify(env: WorkflowEnvironment, event: NotifyEvent, task_queue: str) -> list[DeliveryOutcome]:
    """The event's notification run, to its end: what became of each delivery."""
    return await env.client.execute_workflow(
        NotifyEventWorkflow.run,
        event,
        id=f"notify-test-{event.event_id}",
        task_queue=task_queue,
        result_type=list[DeliveryOutcome],
    )


async def set_notification(sessions: Sessions, people: People, **values: Any) -> None:
    """One notification setting of the people's company: at company level, for escalations, unless the
    values say otherwise."""
    values.setdefault("level", "company")
    values.setdefault("entity_id", people.tenant.company_id)
    values.setdefault("event_type", "callback.escalated")
    async with transaction(sessions) as session:
        await settings_store.set_notification_setting(session, company_id=people.tenant.company_id, **values)
