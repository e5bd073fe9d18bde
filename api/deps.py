"""What the routes need from the process: sessions, the Temporal clients (callbacks, appointment changes),
the hierarchical-settings resolvers (policies, notification settings), the slot finder.

They are built once per process (or handed in by tests and benchmarks, which own their lifetimes) and
reached through `request.app.state.deps`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.opening import CallbackOpener
from activities.preparation import CallbackPreparer
from activities.row_states import RowStates
from activities.step_writer import StepWriter
from api.ratelimit import TokenBuckets
from calcom.finder import SlotFinder
from config import Settings
from starter.appointments import AppointmentClient
from starter.client import CallbackClient
from store.notification_settings import NotificationSettings
from store.policies import PolicyResolver


@dataclass
class Deps:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    callbacks: CallbackClient
    policies: PolicyResolver
    slots: SlotFinder
    create_limits: TokenBuckets
    appointments: AppointmentClient
    notification_settings: NotificationSettings
    # A new callback's preparation, read before its workflow starts (activities/preparation.py).
    preparer: CallbackPreparer
    # Writes a new callback's first step before its workflow starts (activities/opening.py), through
    # pooled sessions: their pre-ping replaces a connection PostgreSQL dropped instead of failing a create.
    opener: CallbackOpener
    # A callback row's state, to start a workflow from (a retried create whose start was lost).
    row_states: RowStates
    # Where this process's Temporal runtime serves the SDK's metrics (merged into /metrics), if anywhere.
    sdk_metrics_url: str | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        callbacks: CallbackClient,
        slots: SlotFinder,
        policies: PolicyResolver | None = None,
        sdk_metrics_url: str | None = None,
        notification_settings: NotificationSettings | None = None,
    ) -> Deps:
        # Without a listener the resolver reads the database on every call: never stale after a PUT.
        resolver = policies if policies is not None else PolicyResolver(sessions)
        preparer = CallbackPreparer.from_settings(sessions, resolver, settings)
        return cls(
            settings=settings,
            sessions=sessions,
            callbacks=callbacks,
            policies=resolver,
            slots=slots,
            create_limits=TokenBuckets(settings.api_create_rate_per_minute, settings.api_create_burst),
            # Same Temporal connection and task queue as the callbacks: one worker serves both.
            appointments=AppointmentClient(
                callbacks.temporal, settings.task_queue, timeout=settings.api_temporal_timeout_seconds
            ),
            notification_settings=(
                notification_settings if notification_settings is not None else NotificationSettings(sessions)
            ),
            preparer=preparer,
            opener=CallbackOpener(preparer, StepWriter(sessions)),
            row_states=RowStates(sessions, settings.callback_defaults(), resolver),
            sdk_metrics_url=sdk_metrics_url,
        )


def get_deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps
