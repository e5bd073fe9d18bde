"""Structured JSON logs: one object per line, with the workflow id and company id of whatever the line is
about, from activities, workflows and the API alike.

Where the ids come from:
- inside an activity, `temporalio.activity.info()` (workflow id, activity type) and the activity's input
  (company id, found by `ActivityLogContext` before the activity runs);
- inside a workflow, the `temporal_workflow` extra that `workflow.logger` attaches;
- in the API, a per-request dict that the request middleware opens and the routes fill in (`bind`);
- with tracing on (telemetry/tracing.py), the trace and span id of the span current when the line is
  written, so a line leads to its trace and a trace to its lines.
Lines logged through plain module loggers get the same fields, because the filter reads the context, not
the logger.

No personal data (docs/design.md §8): our messages name callbacks by id and never carry names; on top,
every message and exception text is redacted before it is written (`redact`): phone numbers keep their
country code and last two digits, email addresses are replaced. That catches what third parties put into
exception texts (an SMTP refusal naming the mailbox, a gateway echoing the number).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

CONTEXT_FIELDS = ("workflow_id", "run_id", "workflow_type", "activity_type", "company_id", "request_id")
TRACE_FIELDS = ("trace_id", "span_id")

_context: ContextVar[dict[str, Any] | None] = ContextVar("callbacks_log_context", default=None)


def open_context(**fields: Any) -> dict[str, Any]:
    """Start a fresh context for one unit of work (a request, an activity); returns its dict, which code
    further down fills in with `bind` (the dict is shared, so later additions reach the opener too)."""
    fields = {key: value for key, value in fields.items() if value is not None}
    _context.set(fields)
    return fields


def bind(**fields: Any) -> None:
    """Add ids to the current context (no-op outside one)."""
    current = _context.get()
    if current is not None:
        current.update({key: value for key, value in fields.items() if value is not None})


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Puts the context fields on every record (as attributes), whatever logger it came from."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, Any] = {}
        workflow_extra = getattr(record, "temporal_workflow", None)
        if isinstance(workflow_extra, Mapping):
            fields["workflow_id"] = workflow_extra.get("workflow_id")
            fields["run_id"] = workflow_extra.get("run_id")
            fields["workflow_type"] = workflow_extra.get("workflow_type")
        if activity.in_activity():
            info = activity.info()
            fields["workflow_id"] = info.workflow_id
            fields["run_id"] = info.workflow_run_id
            fields["workflow_type"] = info.workflow_type
            fields["activity_type"] = info.activity_type
        for key, value in (_context.get() or {}).items():
            fields.setdefault(key, value)
            if fields[key] is None:
                fields[key] = value
        for key in CONTEXT_FIELDS:
            if getattr(record, key, None) is None:
                setattr(record, key, fields.get(key))
        span = trace.get_current_span().get_span_context()
        if span.is_valid and getattr(record, "trace_id", None) is None:
            # The W3C forms trace backends search by: 32 and 16 hex digits.
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        return True


# International numbers as people and libraries write them. At least 7 digits, so times, versions and
# counts stay as they are.
_PHONE = re.compile(
    r"(?<![\w+])\+\d(?:[\s().\-/]{0,2}\d){6,17}(?!\w)"  # +49 30 1234567, +49 (30) 123-4567
    r"|(?<![\w\-+])00\d(?:\s?\d){6,17}(?![\w\-])"  # 0049 30 1234567 (not a run of digits in an id)
)
_EMAIL = re.compile(r"[\w.+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")


def _mask_number(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group())
    return f"{found.group()[:3]}…{digits[-2:]}"


def redact(text: str) -> str:
    """The text with phone numbers masked (country code and last two digits stay) and email addresses
    replaced, for log lines."""
    if "@" in text:
        text = _EMAIL.sub("<email>", text)
    return _PHONE.sub(_mask_number, text)


class RedactingFormatter(logging.Formatter):
    """The text format, redacted like the JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in (*CONTEXT_FIELDS, *TRACE_FIELDS):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        for key in ("method", "path", "status", "duration_ms"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Root logging for a process of the engine: JSON lines on stdout (or plain text for a terminal)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        # The ids are fields of their own; the SDK's habit of appending them to the message is noise.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(workflow_id)s] %(message)s")
        )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # One line per request comes from our middleware; httpx's own INFO line per request would only repeat it.
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# --- activities: the company id from the input ----------------------------------------------------


def company_of(value: Any, depth: int = 0) -> int | None:
    """The `company_id` somewhere in an activity input (a transition's state, a notification's subject,
    a request...), looked up a few levels deep; None when the input is about no single company."""
    if depth > 4 or value is None:
        return None
    found = getattr(value, "company_id", None)
    if isinstance(found, int):
        return found
    if isinstance(value, list | tuple) and value:
        return company_of(value[0], depth + 1)
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            child = getattr(value, name)
            if isinstance(child, BaseModel | list | tuple):
                found = company_of(child, depth + 1)
                if found is not None:
                    return found
    return None


class _ActivityContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        company = next((c for c in map(company_of, input.args) if c is not None), None)
        open_context(company_id=company)
        return await self.next.execute_activity(input)


class ActivityLogContext(Interceptor):
    """Worker interceptor: every activity runs with its company id in the log context."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityContext(next)
