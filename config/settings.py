"""Runtime configuration, read from the environment (and a `.env` file when present).

The connection settings use the conventional names every operator already knows (`DATABASE_URL`,
`TEMPORAL_ADDRESS`, ...). Everything that belongs to this engine alone lives under the `CALLBACKS_` prefix.
An unset URL means "use the embedded local stack" (see `devstack/`): which database that is, is decided
here, from the files the running stack leaves under `CALLBACKS_LOCAL_DIR`, so no production process needs to
import the dev stack to find it.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.callbacks import CallbackSettings, Priority, SlaClock
from models.dial_window import DEFAULT_DIAL_END, DEFAULT_DIAL_START

LOCAL_TEMPORAL_ADDRESS = "127.0.0.1:7233"
LOCAL_DATABASE = "callbacks"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLBACKS_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="SQLAlchemy URL of the app database; unset = embedded PostgreSQL under .local/",
    )
    temporal_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_ADDRESS", "temporal_address"),
        description="host:port of the Temporal frontend; unset = the local dev server on 127.0.0.1:7233",
    )
    temporal_namespace: str = Field(
        default="default", validation_alias=AliasChoices("TEMPORAL_NAMESPACE", "temporal_namespace")
    )
    # TLS to the Temporal frontend (wiring.connect): a CA alone = server TLS, with a certificate and key =
    # mutual TLS; TEMPORAL_TLS alone = TLS with the system's CAs (Temporal Cloud). None set = plaintext.
    temporal_tls: bool = Field(default=False, validation_alias=AliasChoices("TEMPORAL_TLS", "temporal_tls"))
    temporal_tls_ca: Path | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_TLS_CA", "temporal_tls_ca")
    )
    temporal_tls_cert: Path | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_TLS_CERT", "temporal_tls_cert")
    )
    temporal_tls_key: Path | None = Field(
        default=None, validation_alias=AliasChoices("TEMPORAL_TLS_KEY", "temporal_tls_key")
    )
    temporal_tls_server_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TEMPORAL_TLS_SERVER_NAME", "temporal_tls_server_name"),
        description="the name the server's certificate is checked against (default: the address's host)",
    )
    calcom_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("CALCOM_BASE_URL", "calcom_base_url")
    )
    calcom_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("CALCOM_API_KEY", "calcom_api_key")
    )
    smtp_url: str | None = Field(default=None, validation_alias=AliasChoices("SMTP_URL", "smtp_url"))

    local_dir: Path = Field(
        default=Path(".local"), description="where `make dev` keeps its PostgreSQL, Temporal and mail data"
    )
    # The Temporal dev server `make dev` starts when TEMPORAL_ADDRESS is not set (UI port 0: no UI).
    dev_temporal_port: PositiveInt = 7233
    dev_temporal_ui_port: NonNegativeInt = 8233
    demo_callbacks: bool = Field(
        default=True,
        description="`make dev` creates demo callbacks in every state under minute-scale SLAs on first start",
    )

    # Payload encryption (codec/keys.py has the formats; docs/operations.md "Personal data"). Without
    # keys a process uses the local stack's key file `<local_dir>/codec-keys` (`make dev` writes it) and
    # refuses to start when there is none.
    codec_keys: SecretStr | None = None
    codec_keys_file: Path | None = None
    codec_company_keys: SecretStr | None = None
    codec_company_keys_file: Path | None = None
    codec_shredded: str | None = None
    codec_shredded_file: Path | None = None
    # The codec server (api/codec_server.py): browser origins (the Temporal UI) allowed to call it.
    codec_cors_origins: str = Field(
        default="http://127.0.0.1:8233,http://localhost:8233",
        description="comma-separated origins of the Temporal Web UI",
    )

    task_queue: str = "callbacks"
    # How many open callbacks one worker is sized to hold (config/worker_sizing.py derives its cache,
    # task slots and pollers from it; docs/operations.md "Scale"). The three limits below override the
    # derived values when set.
    worker_open_callbacks: PositiveInt = 10_000
    # The memory a worker may use; its workflow cache is capped to fit (config/worker_sizing.py).
    worker_memory_mib: PositiveInt = 1024
    worker_max_concurrent_workflow_tasks: PositiveInt | None = None
    worker_max_concurrent_activities: PositiveInt | None = None
    worker_max_cached_workflows: PositiveInt | None = None
    # Activities still running this long after SIGTERM are cancelled (each is idempotent and retried).
    worker_graceful_shutdown_seconds: PositiveFloat = 5.0

    # Cal.com (calcom/). Without CALCOM_BASE_URL the engine talks to the local fake on this port.
    calcom_fake_port: PositiveInt = 8788
    calcom_timeout_seconds: PositiveFloat = 10.0
    calcom_max_connections: PositiveInt = 20
    calcom_cache_ttl_seconds: PositiveFloat = 45.0
    calcom_slowdown_below: PositiveInt = 5
    calcom_backoff_base_seconds: PositiveFloat = 0.5
    calcom_max_inline_wait_seconds: NonNegativeFloat = 5.0
    calcom_search_chunk_days: PositiveInt = 7
    # Reconciliation of Cal.com bookings (missed webhooks): every N minutes, bookings from N days back to
    # N days ahead (workflows/calcom_sync.py).
    calcom_sync_every_minutes: PositiveFloat = 30.0
    calcom_sync_catchup_minutes: PositiveFloat = 30.0
    calcom_sync_days: PositiveInt = Field(default=7, le=90)

    sla_hours_urgent: PositiveFloat = 2
    sla_hours_high: PositiveFloat = 4
    sla_hours_normal: PositiveFloat = 24
    auto_assign: bool = True
    escalation_cooldown_hours: PositiveFloat = 4
    max_contact_attempts: PositiveInt = 3
    max_escalations: PositiveInt = 3
    # `calendar` (every hour counts) or `business_hours` (only the branch's open hours); a `callback`
    # policy overrides it per company, branch, service or staff.
    sla_clock: SlaClock = SlaClock.CALENDAR
    # When customers may be called, on their own wall clock, unless their company or branch says otherwise.
    dial_window_start: time = DEFAULT_DIAL_START
    dial_window_end: time = DEFAULT_DIAL_END

    # HTTP API (api/). `api_url` and `api_key` are what the CLI uses to reach a running API.
    api_host: str = "127.0.0.1"
    api_port: PositiveInt = 8000
    api_url: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    api_create_rate_per_minute: PositiveFloat = 60.0
    api_create_burst: PositiveInt = 20
    api_max_body_bytes: PositiveInt = 256 * 1024
    api_bulk_max_ids: PositiveInt = 100
    # The deadline of each call the API makes into Temporal: a slower answer is a 504 (the action may
    # still be applied; a retry with the same Idempotency-Key is safe), an unreachable server a 503.
    api_temporal_timeout_seconds: PositiveFloat = 10.0

    # The tenant directory (api/routes_companies.py … api/routes_import.py).
    webhook_allow_private: bool = Field(
        default=False,
        description="accept company webhook URLs on loopback, link-local, private or metadata addresses "
        "(only for an operator whose receivers really live there)",
    )
    webhook_secret_grace_hours: PositiveFloat = Field(
        default=24.0, description="after a rotation the previous webhook secret stays known this long"
    )
    import_max_bytes: PositiveInt = Field(
        default=4 * 1024 * 1024, description="largest CSV a bulk import accepts (POST /v1/import/…)"
    )
    import_max_rows: PositiveInt = 20_000

    # Staff console (console/), served by the API app at /console.
    console_secret: str | None = Field(
        default=None,
        description="signs console session cookies; unset = a random secret per process (sessions end "
        "on restart, and several API processes behind one balancer need the same configured secret)",
    )
    console_session_hours: PositiveFloat = 12.0
    console_refresh_seconds: PositiveFloat = 10.0
    console_badge_ttl_seconds: NonNegativeFloat = 15.0
    console_page_size: PositiveInt = 25
    console_cookie_secure: bool = Field(
        default=False, description="mark console cookies Secure (always on when the request came over https)"
    )
    temporal_ui_url: str = Field(
        default="http://127.0.0.1:8233",
        validation_alias=AliasChoices("TEMPORAL_UI_URL", "temporal_ui_url"),
        description="where the console links each callback's workflow",
    )

    # Logs and metrics (docs/operations.md). The worker serves /metrics and /healthz on this address.
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: NonNegativeInt = 9464
    # The API process serves /metrics for the scraper on a port of its own (0: not at all), not on the
    # public API port; `api_public_metrics` puts it back on the API port for setups that scrape there.
    api_metrics_host: str = "127.0.0.1"
    api_metrics_port: NonNegativeInt = 9465
    api_public_metrics: bool = False
    # Tracing (telemetry/tracing.py) under OpenTelemetry's own names: spans go by OTLP over HTTP to the
    # endpoint (`/v1/traces` is appended, as the OTLP exporters do); unset or empty = tracing off. The
    # exporter reads the other OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression) itself.
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "otel_exporter_otlp_endpoint"),
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otel_exporter_otlp_traces_endpoint"
        ),
        description="the full traces URL, instead of OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces",
    )
    otel_service_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_SERVICE_NAME", "otel_service_name"),
        description="default: callbacks-worker / callbacks-api",
    )

    # Temporal Schedules of the periodic jobs (starter/schedules.py).
    reconcile_every_minutes: PositiveFloat = 10.0
    reconcile_catchup_minutes: PositiveFloat = 10.0
    reconcile_page_size: PositiveInt = 200
    # A sweep run looks at this many open rows at most (the next run carries on), and does not query the
    # workflows of rows written within the last `reconcile_settle_minutes` (their workflow is writing them).
    reconcile_rows_per_run: PositiveInt = 5000
    reconcile_settle_minutes: NonNegativeFloat = 5.0
    retention_days: PositiveFloat = 90.0
    retention_every_hours: PositiveFloat = 24.0
    retention_catchup_hours: PositiveFloat = 6.0
    retention_batch_size: PositiveInt = 1000

    policy_cache_ttl_seconds: PositiveFloat = 300.0
    policy_stats_refresh_minutes: PositiveFloat = 15.0
    policy_stats_catchup_minutes: PositiveFloat = 10.0

    # Notifications (channels/). Without SMTP_URL / an SMS gateway URL, the local sinks of `make dev`.
    notify_mail_from: str = "Callbacks <callbacks@localhost>"
    notify_message_id_domain: str = "callbacks.local"
    notify_smtp_sink_port: PositiveInt = 1025
    notify_smtp_timeout_seconds: PositiveFloat = 30.0
    notify_sms_gateway_url: str | None = None
    notify_sms_fake_port: PositiveInt = 8790
    notify_sms_timeout_seconds: PositiveFloat = 10.0
    notify_webhook_timeout_seconds: PositiveFloat = 10.0
    notify_retry_count: NonNegativeInt = 3
    notify_retry_delay_minutes: NonNegativeInt = 5
    # Default quiet hours (branch local time) for branches that set none; equal times switch them off.
    notify_quiet_hours_start: time = time(22, 0)
    notify_quiet_hours_end: time = time(7, 0)

    def calcom_url(self) -> str:
        """The Cal.com API base URL: CALCOM_BASE_URL, else the local fake of `make dev`."""
        return self.calcom_base_url or f"http://127.0.0.1:{self.calcom_fake_port}"

    def smtp(self) -> str:
        """The SMTP server for notification mails: SMTP_URL, else the local sink of `make dev`."""
        return self.smtp_url or f"smtp://127.0.0.1:{self.notify_smtp_sink_port}"

    def sms_gateway(self) -> str:
        """The SMS gateway endpoint: the configured URL, else the local fake of `make dev`."""
        return self.notify_sms_gateway_url or f"http://127.0.0.1:{self.notify_sms_fake_port}/messages"

    def codec_origins(self) -> list[str]:
        return [origin.strip().rstrip("/") for origin in self.codec_cors_origins.split(",") if origin.strip()]

    def local_codec_keys(self) -> Path:
        """The key file of the local stack (`make dev` generates it once; git-ignored with .local/)."""
        return self.local_dir / "codec-keys"

    def callback_defaults(self) -> CallbackSettings:
        """The callback rules before any `callback` policy of a company, branch, service or staff applies."""
        return CallbackSettings(
            sla_hours={
                Priority.URGENT: self.sla_hours_urgent,
                Priority.HIGH: self.sla_hours_high,
                Priority.NORMAL: self.sla_hours_normal,
            },
            auto_assign=self.auto_assign,
            escalation_cooldown_hours=self.escalation_cooldown_hours,
            max_contact_attempts=self.max_contact_attempts,
            max_escalations=self.max_escalations,
            sla_clock=self.sla_clock,
        )


def database_url_of(settings: Settings) -> str:
    """DATABASE_URL, else the app database of the embedded PostgreSQL that `make dev` runs (its socket
    folder is written in the server's postmaster.pid)."""
    if settings.database_url:
        return settings.database_url
    pid_file = (settings.local_dir / "pgdata" / "postmaster.pid").resolve()
    if not pid_file.exists():
        raise SystemExit("DATABASE_URL is not set and the local stack is not running: start `make dev` first")
    lines = pid_file.read_text().splitlines()
    socket_dir = lines[4] if len(lines) > 4 and lines[4] else str(pid_file.parent)
    return f"postgresql://postgres:@/{LOCAL_DATABASE}?host={socket_dir}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
