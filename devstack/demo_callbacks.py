"""The live demo of `make dev`: on first start, a handful of callbacks in every state under a demo `callback`
policy with minute-scale SLAs, so that within five minutes a newcomer watches warnings, escalations and
reassignments happen in the Temporal UI and the console (and an expired callback is there from the start).

Created through the same client the API uses (Update-With-Start), so every one is a real workflow with its
row, events and search attributes. The expired one is an "import" of a callback already 30 minutes old,
started from its state (as the reconciliation sweep starts rows without a workflow): its overdue deadlines
run at once. `CALLBACKS_DEMO_CALLBACKS=false` turns the demo off.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from config import Settings
from devstack.demo import DEMO_COMPANY, demo_staff_id
from models import search_attributes
from models.callbacks import (
    GENERATION,
    AttemptOutcome,
    CallbackState,
    CallbackStatus,
    CallbackWorkflowInput,
    Cancel,
    Complete,
    Escalation,
    EscalationReason,
    MarkContacted,
    NewCallback,
    Priority,
    RecordAttempt,
    mask_phone,
)
from models.tables import Branch, CallbackRequest, Company, Customer, PolicyConfiguration, Service
from rules.callback_settings import apply_callback_policy
from rules.sla import sla_deadline
from starter.client import CallbackClient
from store.db import transaction
from store.policies import set_policy
from workflows.callback import CallbackWorkflow

MINUTE = 1 / 60
# Minute-scale SLAs: an urgent callback warns at 1.5 and 2.25 min, escalates at 3 and 5 min (each time to
# someone else) and expires at 7 min; a normal one waits unassigned and is escalated to someone at 10 min.
DEMO_POLICY = {
    "sla_hours": {"urgent": 3 * MINUTE, "high": 5 * MINUTE, "normal": 10 * MINUTE},
    "escalation_cooldown_hours": 2 * MINUTE,
    "max_escalations": 2,
    "auto_assign": False,
}
_INDENT = "\n" + " " * 19
BANNER = _INDENT.join(
    [
        "under a demo `callback` policy with minute SLAs",
        "(urgent 3 min, high 5, normal 10; cooldown 2 min): within five minutes the Temporal UI",
        "and the console show warnings, escalations and reassignments",
        "(CALLBACKS_DEMO_CALLBACKS=false turns this off)",
    ]
)


@dataclass(frozen=True)
class DemoCallbacks:
    created: list[str]  # workflow ids

    @property
    def any(self) -> bool:
        return bool(self.created)


async def _demo_ids(session: AsyncSession) -> tuple[int, int, int] | None:
    """(company, Berlin branch, Checkup service) of the demo tenant."""
    company = await session.scalar(select(Company.id).where(Company.name == DEMO_COMPANY))
    if company is None:
        return None
    branch = await session.scalar(
        select(Branch.id).where(Branch.company_id == company).order_by(Branch.id).limit(1)
    )
    service = await session.scalar(
        select(Service.id)
        .where(Service.company_id == company, Service.branch_id == branch)
        .order_by(Service.id)
    )
    if branch is None or service is None:  # the demo tenant was changed by hand: nothing to attach to
        return None
    return company, branch, service


async def seed_demo_callbacks(
    sessions: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
) -> DemoCallbacks:
    """Once: the demo policy and the demo callbacks, unless the demo company has callbacks already (or the
    demo is switched off). Needs a running worker on `settings.task_queue`."""
    if not settings.demo_callbacks:
        return DemoCallbacks([])
    async with transaction(sessions) as session:
        found = await _demo_ids(session)
        if found is None:
            return DemoCallbacks([])
        company, branch, service = found
        existing = await session.scalar(
            select(func.count()).select_from(CallbackRequest).where(CallbackRequest.company_id == company)
        )
        if existing:
            return DemoCallbacks([])
        has_policy = await session.scalar(
            select(PolicyConfiguration.id).where(
                PolicyConfiguration.company_id == company,
                PolicyConfiguration.configurable_type == "company",
                PolicyConfiguration.policy_type == "callback",
                PolicyConfiguration.deleted_at.is_(None),
            )
        )
        if has_policy is None:
            await set_policy(
                session,
                company_id=company,
                level="company",
                entity_id=company,
                policy_type="callback",
                config=DEMO_POLICY,
            )
        customers = {
            name: customer_id
            for customer_id, name in (
                await session.execute(
                    select(Customer.id, Customer.name).where(Customer.company_id == company)
                )
            ).all()
        }

    client = CallbackClient(temporal, settings.task_queue)

    def request(name: str, phone: str, priority: Priority, notes: str) -> NewCallback:
        return NewCallback(
            company_id=company,
            branch_id=branch,
            service_id=service,
            customer_id=customers.get(name),
            customer_name=name,
            phone_number=phone,
            priority=priority,
            notes=notes,
            metadata={"demo": "true"},
        )

    async def create(key: str, new: NewCallback) -> str:
        return (await client.create(new, idempotency_key=f"demo-{key}")).state.workflow_id

    created = [
        # pending: normal callbacks wait for someone to take them; at 10 min the SLA clock escalates it.
        await create(
            "pending", request("Max Mustermann", "+4930901820", Priority.NORMAL, "Rückruf wegen Termin")
        ),
        # assigned, urgent: warnings at 1.5 and 2.25 min, escalations (reassigned) at 3 and 5, expires at 7.
        await create(
            "urgent", request("Erika Mustermann", "+4915123456789", Priority.URGENT, "Zahnschmerzen")
        ),
    ]
    high = await create(
        "high", request("Lukas Fischer", "+4917612345678", Priority.HIGH, "Befund besprechen")
    )
    await client.act(high, RecordAttempt(outcome=AttemptOutcome.NO_ANSWER, actor="demo"))
    contacted = await create(
        "contacted", request("Joana Pereira", "+351912345678", Priority.HIGH, "Preisfrage")
    )
    await client.act(contacted, MarkContacted(actor="demo"))
    completed = await create("completed", request("Sofia Almeida", "+351912345679", Priority.HIGH, "Rezept"))
    await client.act(completed, MarkContacted(actor="demo"))
    await client.act(completed, Complete(notes="Termin für Dienstag vereinbart", actor="demo"))
    cancelled = await create("cancelled", request("Jonas Braun", "+4940123456", Priority.NORMAL, "Rückfrage"))
    await client.act(cancelled, Cancel(reason="hat online gebucht", actor="demo"))
    created += [high, contacted, completed, cancelled]
    created.append(
        await _import_overdue(
            client,
            request("Mia Schneider", "+4915112340000", Priority.NORMAL, "aus dem Altsystem"),
            settings,
        )
    )
    return DemoCallbacks(created)


async def _import_overdue(client: CallbackClient, request: NewCallback, settings: Settings) -> str:
    """A callback imported from an older system 30 minutes old, warned and escalated twice there: started
    from that state, its last deadline is long past, so it expires at once (the demo's expired one)."""
    rules = apply_callback_policy(settings.callback_defaults(), DEMO_POLICY)
    created_at = datetime.now(UTC) - timedelta(minutes=30)
    expires_at = sla_deadline(created_at, request.priority, rules)
    cooldown = timedelta(hours=rules.escalation_cooldown_hours)
    hops = [(demo_staff_id(1), demo_staff_id(2)), (demo_staff_id(2), demo_staff_id(3))]
    escalations = [
        Escalation(
            number=n,
            reason=EscalationReason.SLA_BREACH,
            escalated_from=source,
            escalated_to=target,
            at=expires_at + cooldown * (n - 1),
        )
        for n, (source, target) in enumerate(hops, start=1)
    ]
    state = CallbackState(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"callbacks-demo-import-{request.company_id}"),
        request=request,
        settings=rules,
        priority=request.priority,
        created_at=created_at,
        expires_at=expires_at,
        status=CallbackStatus.ASSIGNED,
        assigned_to=demo_staff_id(3),
        assigned_at=escalations[-1].at,
        previous_assignees=[demo_staff_id(1), demo_staff_id(2)],
        escalations=escalations,
        warnings_sent=[50, 75],
    )
    await client.temporal.start_workflow(
        CallbackWorkflow.run,
        CallbackWorkflowInput(
            callback_id=state.id, request=request, carried_state=state, generation=GENERATION
        ),
        id=state.workflow_id,
        task_queue=settings.task_queue,
        search_attributes=search_attributes.typed_for(state),
        memo={"customer_name": request.customer_name, "phone": mask_phone(request.phone_number)},
        static_summary=f"Demo: callback for {request.customer_name} imported 30 minutes old",
    )
    return state.workflow_id
