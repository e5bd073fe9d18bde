"""A fake Cal.com that follows the real API v2 contract, for tests and the local stack.

It reproduces what our client (`calcom/client.py`) must cope with, each part in its own module:

* `wire`: the `cal-api-version` values, strict ISO 8601 input, `toISOString()` and luxon timestamps, the
  v2 error envelope.
* `slots`: version dispatch (`2024-09-04` → `GET /v2/slots`; a missing or unknown header falls back to
  `2024-04-15` → the legacy `GET /v2/slots/available`), strict query validation, Cal.com's clamping of
  `start`/`end`, date keys in the requested `timeZone`, `data: {}` when nothing is free.
* `bookings`: create (201), get, list (`GET /v2/bookings`, API key only, paginated), cancel (200),
  reschedule (201, a new uid; the old booking is cancelled), all needing `2024-08-13`.
* `webhooks`: every booking created, cancelled or rescheduled through the API is POSTed to the configured
  subscriber (`subscribe(url, secret)`, `--webhook-url`/`--webhook-secret`, `POST /_fake/webhook`) as a
  signed Cal.com webhook, asynchronously and best-effort; `pause_webhooks()` drops them (a lost delivery).
* `ratelimit`: the throttler per tracker (API key, token, client id, IP) with its headers, block and 429
  body, a switchable `Retry-After`, and injected failures.
* `calendar`: availability from weekly working hours in the event type's time zone, minus the host's
  bookings.
* `app`: `FakeCalcom` with its test hooks (`force_block`, `fail_next`, `answer_late` (a change made, its
  answer held back past the client's timeout), `book`, the request log and counters, `sent_webhooks`,
  `drain_webhooks`, an injectable calendar clock) and `serve_fake`.

Run it: `python -m devstack.calcom_fake --port 8788` (seeded with the demo event types 1001–1004).
"""

from devstack.calcom_fake.app import FakeCalcom, main, serve_fake
from devstack.calcom_fake.bookings import booking_json
from devstack.calcom_fake.calendar import EventType, FakeBooking, demo_event_types, working_hours
from devstack.calcom_fake.ratelimit import RateLimitConfig, RequestRecord
from devstack.calcom_fake.slots import SLOT_COMMON, SLOT_SHAPES
from devstack.calcom_fake.webhooks import SentWebhook, WebhookSubscription, booking_payload
from devstack.calcom_fake.wire import (
    BOOKINGS_VERSION,
    DEFAULT_VERSION,
    KNOWN_VERSIONS,
    SLOTS_VERSION,
    ApiError,
    js_iso,
    luxon_iso,
    parse_iso,
)

__all__ = [
    "BOOKINGS_VERSION",
    "DEFAULT_VERSION",
    "KNOWN_VERSIONS",
    "SLOTS_VERSION",
    "SLOT_COMMON",
    "SLOT_SHAPES",
    "ApiError",
    "EventType",
    "FakeBooking",
    "FakeCalcom",
    "RateLimitConfig",
    "RequestRecord",
    "SentWebhook",
    "WebhookSubscription",
    "booking_json",
    "booking_payload",
    "demo_event_types",
    "js_iso",
    "luxon_iso",
    "main",
    "parse_iso",
    "serve_fake",
    "working_hours",
]
