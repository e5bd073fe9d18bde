"""The engine's own Prometheus metrics (docs/operations.md says what each one means).

Counters live in the process that does the work and are summed across processes by Prometheus: a worker
counts the transitions it wrote, the Cal.com client counts its requests, and so on. Lifecycle counters are
incremented only when the read-model write really changed the row, so a retried or replayed local
activity never counts a transition twice. Numbers that describe the whole system rather than one process
(the open queue, the SLA compliance rate) are gauges computed from the read model by the API at scrape
time (see `api/metrics.py`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from models.callbacks import CallbackState, Transition

# `*_created` timestamp series double the series count and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
REGISTRY.register(GC_COLLECTOR)
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Minutes to days: first contact is expected within the SLA (2 h to 24 h), completion within ~36 h.
DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 36 * 3600, 72 * 3600)

CALLBACKS_CREATED = Counter("callbacks_created", "Callbacks created.", ["priority"], registry=REGISTRY)
CALLBACKS_COMPLETED = Counter(
    "callbacks_completed",
    "Callbacks completed; on_time says whether before the SLA deadline.",
    ["priority", "on_time"],
    registry=REGISTRY,
)
CALLBACKS_EXPIRED = Counter(
    "callbacks_expired",
    "Callbacks that expired after their last escalation.",
    ["priority"],
    registry=REGISTRY,
)
CALLBACKS_CANCELLED = Counter("callbacks_cancelled", "Callbacks cancelled.", ["priority"], registry=REGISTRY)
SLA_OUTCOMES = Counter(
    "callbacks_sla_outcomes",
    "Closed callbacks by SLA outcome: met = completed by the deadline, breached = completed late or expired.",
    ["priority", "outcome"],
    registry=REGISTRY,
)
ESCALATIONS = Counter("callbacks_escalations", "Escalations by reason.", ["reason"], registry=REGISTRY)
TIME_TO_FIRST_CONTACT = Histogram(
    "callbacks_time_to_first_contact_seconds",
    "From creation to the first contact with the customer (reached, or a failed attempt).",
    ["priority"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
TIME_TO_COMPLETION = Histogram(
    "callbacks_time_to_completion_seconds",
    "From creation to completion.",
    ["priority"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)

POLICY_CACHE_LOOKUPS = Counter(
    "callbacks_policy_cache_lookups",
    "Policy cache look-ups (hit, miss).",
    ["result"],
    registry=REGISTRY,
)
NOTIFICATION_SETTINGS_CACHE_LOOKUPS = Counter(
    "callbacks_notification_settings_cache_lookups",
    "Notification-settings cache look-ups (hit, miss), one per event type resolved for a company.",
    ["result"],
    registry=REGISTRY,
)
CALCOM_REQUESTS = Counter(
    "callbacks_calcom_requests",
    "Requests sent to Cal.com by method and status (a number, or 'error' when no answer came).",
    ["method", "status"],
    registry=REGISTRY,
)
CALCOM_RATE_LIMITED = Counter("callbacks_calcom_rate_limited", "429 answers from Cal.com.", registry=REGISTRY)
# Cal.com's budget for our API key, as this process last saw it (every process spends the same key's
# budget, kept in PostgreSQL: take min/max across processes). Remaining is NaN until the first answer,
# so `min()` skips a process that has not asked yet.
CALCOM_BUDGET_LIMIT = Gauge(
    "callbacks_calcom_budget_limit",
    "Requests Cal.com allows per rate-limit window (0 until an answer said).",
    registry=REGISTRY,
)
CALCOM_BUDGET_REMAINING = Gauge(
    "callbacks_calcom_budget_remaining",
    "Requests left in Cal.com's current window by the key's shared estimate (0 while blocked after a 429).",
    registry=REGISTRY,
)
CALCOM_BUDGET_REMAINING.set(math.nan)
CALCOM_WAITS = Counter(
    "callbacks_calcom_waits",
    "Times a Cal.com request was held back before sending, by reason (pacing, window, a 429, probe).",
    ["reason"],
    registry=REGISTRY,
)
CALCOM_WAIT_SECONDS = Counter(
    "callbacks_calcom_wait_seconds", "Seconds Cal.com requests were held back.", registry=REGISTRY
)
CALCOM_WEBHOOKS = Counter(
    "callbacks_calcom_webhooks",
    "Cal.com webhooks received, by booking change and outcome (refused = bad signature).",
    ["change", "outcome"],
    registry=REGISTRY,
)
CALCOM_SYNCED = Counter(
    "callbacks_calcom_bookings_synced",
    "Bookings the Cal.com reconciliation looked at, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
CALCOM_CACHE_LOOKUPS = Counter(
    "callbacks_calcom_cache_lookups",
    "Slot cache look-ups by result (hit, joined = shared an in-flight load, miss).",
    ["result"],
    registry=REGISTRY,
)
NOTIFICATION_DELIVERIES = Counter(
    "callbacks_notification_deliveries",
    "Notification delivery attempts by channel and outcome (sent, duplicate, failed, refused, "
    "template_refused, busy, abandoned, erased).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
SCHEDULED_REPAIRS = Counter(
    "callbacks_reconcile_repairs",
    "What the reconciliation sweep fixed (started, repersisted) or could not fix (failed).",
    ["kind"],
    registry=REGISTRY,
)
RETENTION_PURGED = Counter(
    "callbacks_retention_purged_rows",
    "Rows purged by the retention job.",
    ["table"],
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "callbacks_api_requests",
    "HTTP requests by method, route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
API_LATENCY = Histogram(
    "callbacks_api_request_seconds", "HTTP request latency by route.", ["method", "route"], registry=REGISTRY
)
# Gauges of the read model; the API sets them right before each scrape.
OPEN_CALLBACKS = Gauge(
    "callbacks_open",
    "Open callbacks (not deleted) by status and priority.",
    ["status", "priority"],
    registry=REGISTRY,
)
OVERDUE_CALLBACKS = Gauge(
    "callbacks_overdue",
    "Open callbacks past their SLA deadline.",
    ["priority"],
    registry=REGISTRY,
)
SLA_COMPLIANCE = Gauge(
    "callbacks_sla_compliance_ratio",
    "Share of callbacks closed in the window (completed or expired) that were completed by their deadline.",
    ["window"],
    registry=REGISTRY,
)
SLA_COMPLIANCE_BY_BRANCH = Gauge(
    "callbacks_sla_compliance_by_branch_ratio",
    "callbacks_sla_compliance_ratio per branch (id), for the branches that closed callbacks in the window.",
    ["branch_id", "window"],
    registry=REGISTRY,
)
STUCK_WORKFLOWS = Gauge(
    "callbacks_stuck_workflows",
    "Open callbacks whose workflow cannot get a database step through, by step (prepare, candidates, "
    "persist) and state (retrying; gave_up: waits for an operator's retry_stuck).",
    ["step", "state"],
    registry=REGISTRY,
)

_FIRST_CONTACT_EVENTS = frozenset({"callback.contacted", "callback.attempt_failed", "callback.completed"})


def record_transition(transition: Transition) -> None:
    """Count one step a worker has just written to the read model (call it only when the write changed
    the row: that is what makes the counts exact under retries and replays)."""
    state = transition.state
    priority = state.priority.value
    types = [event.type for event in transition.events]
    for event in transition.events:
        if event.type == "callback.created":
            CALLBACKS_CREATED.labels(priority).inc()
        elif event.type == "callback.completed":
            on_time = state.completed_at is not None and state.completed_at <= state.expires_at
            CALLBACKS_COMPLETED.labels(priority, str(on_time).lower()).inc()
            SLA_OUTCOMES.labels(priority, "met" if on_time else "breached").inc()
            if state.completed_at is not None:
                TIME_TO_COMPLETION.labels(priority).observe(_seconds(state.created_at, state.completed_at))
        elif event.type == "callback.expired":
            CALLBACKS_EXPIRED.labels(priority).inc()
            SLA_OUTCOMES.labels(priority, "breached").inc()
        elif event.type == "callback.cancelled":
            CALLBACKS_CANCELLED.labels(priority).inc()
    if transition.escalation is not None:
        ESCALATIONS.labels(transition.escalation.reason.value).inc()
    first = first_contact(state, types)
    if first is not None:
        TIME_TO_FIRST_CONTACT.labels(priority).observe(_seconds(state.created_at, first))


def first_contact(state: CallbackState, event_types: Iterable[str]) -> datetime | None:
    """When this step is the callback's first contact, its moment; else None. A step is the first
    contact when it is a contact-like event and the state shows no earlier one: one attempt at most (this
    one), and `contacted_at` either unset or set by this very step."""
    kinds = set(event_types) & _FIRST_CONTACT_EVENTS
    if not kinds:
        return None
    attempts = state.attempts
    if "callback.attempt_failed" in kinds:
        earlier_contact = state.contacted_at is not None and state.contacted_at < attempts[-1].at
        return attempts[-1].at if len(attempts) == 1 and not earlier_contact else None
    if "callback.contacted" in kinds:
        return state.contacted_at if not attempts else None
    # Completed straight from assigned: the completion was the contact.
    if state.contacted_at is None and not attempts:
        return state.completed_at
    return None


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def render() -> bytes:
    return generate_latest(REGISTRY)
