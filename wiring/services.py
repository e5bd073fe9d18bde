"""The one composition root: every process (worker, API, `make dev`, benchmarks) builds its engine here.

Before this module the API, the worker and the dev stack each wired the same parts by hand and drifted (the
dev API had no slot cache, the dev worker no policy-change listener). Now `open_services` builds them once:
the database engine and sessions, the hierarchical settings (policies and notification settings, each
with its cache, both kept current by one LISTEN connection), the Cal.com client with its limiter spending
the API key's budget that every process shares (a row in PostgreSQL: Cal.com counts per key), the
cached slot finder, and the Temporal client with the data converter (payloads encrypted by the codec,
over TLS when certificates are configured). Whoever opens it owns it; leaving the context closes all of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, TLSConfig

from activities.calcom import store_resolver
from api.deps import Deps
from calcom.budget import budget_key
from calcom.client import CalcomClient
from calcom.finder import SlotFinder, slot_cache
from codec.converter import encrypted_data_converter
from codec.keys import CodecSettings, KeyConfigError, KeyRing, load_keyring
from config import LOCAL_TEMPORAL_ADDRESS, Settings, database_url_of
from starter.client import CallbackClient
from starter.deadlines import api_retry_config
from store.calcom_budget import PgRateBudget
from store.db import create_engine, create_statement_engine, session_factory
from store.notification_settings import NotificationSettings, NotificationSettingsCache
from store.policies import PolicyCache, PolicyResolver
from store.settings_cache import SettingsListener
from telemetry.runtime import SdkMetrics, sdk_metrics
from telemetry.tracing import Tracing


def codec_keyring(settings: Settings) -> KeyRing:
    """The payload codec's keys: CALLBACKS_CODEC_* (variables or files), else the local stack's key file.
    KeyConfigError when there are none: a process must not write personal data unencrypted."""
    keys_file = settings.codec_keys_file
    if settings.codec_keys is None and keys_file is None:
        local = settings.local_codec_keys()
        if not local.exists():
            raise KeyConfigError(
                "no codec keys: set CALLBACKS_CODEC_KEYS or CALLBACKS_CODEC_KEYS_FILE (generate a key with "
                f"`python -m codec.keys new`), or start `make dev`, which writes {local}"
            )
        keys_file = local
    return load_keyring(
        CodecSettings.model_construct(
            keys=settings.codec_keys,
            keys_file=keys_file,
            company_keys=settings.codec_company_keys,
            company_keys_file=settings.codec_company_keys_file,
            shredded=settings.codec_shredded,
            shredded_file=settings.codec_shredded_file,
        )
    )


def data_converter(settings: Settings, keyring: KeyRing | None = None) -> DataConverter:
    """The converter of every client, worker and replayer: pydantic models as JSON, every payload
    compressed and encrypted with its company's key (codec/), failure messages included."""
    return encrypted_data_converter(keyring if keyring is not None else codec_keyring(settings))


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS to the Temporal frontend from TEMPORAL_TLS_* (config/settings.py); False = plaintext."""
    cert, key, ca = settings.temporal_tls_cert, settings.temporal_tls_key, settings.temporal_tls_ca
    if (cert is None) != (key is None):
        raise ValueError("set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY for mutual TLS, or neither")
    if cert is None and ca is None and settings.temporal_tls_server_name is None:
        return settings.temporal_tls
    return TLSConfig(
        server_root_ca_cert=ca.read_bytes() if ca else None,
        client_cert=cert.read_bytes() if cert else None,
        client_private_key=key.read_bytes() if key else None,
        domain=settings.temporal_tls_server_name,
    )


async def connect(
    settings: Settings,
    runtime: Runtime | None = None,
    retry_config: RetryConfig | None = None,
    tracing: Tracing | None = None,
) -> Client:
    """`runtime`: the process's Temporal runtime when its SDK metrics are exported (telemetry/runtime.py);
    `retry_config`: how the SDK retries failed calls on its own (None: its defaults); `tracing`: the
    process's (telemetry/tracing.py), whose interceptor the client and its workers then carry."""
    return await Client.connect(
        settings.temporal_address or LOCAL_TEMPORAL_ADDRESS,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        tls=tls_config(settings),
        runtime=runtime,
        retry_config=retry_config,
        interceptors=tracing.client_interceptors() if tracing else [],
    )


@dataclass(frozen=True)
class Services:
    """Everything a worker or an API process shares, built the same way for dev and production."""

    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Autocommit connections for the one-statement writes of callback steps (store/callback_writes.py).
    statements: AsyncEngine
    policies: PolicyResolver
    notification_settings: NotificationSettings
    # The one LISTEN connection that keeps both settings caches current.
    settings_listener: SettingsListener
    calcom: CalcomClient
    slots: SlotFinder
    temporal: Client
    sdk: SdkMetrics | None
    tracing: Tracing


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    database_url: str | None = None,
    temporal: Client | None = None,
    export_sdk_metrics: bool = True,
    retry_config: RetryConfig | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[Services]:
    """Build the engine's shared parts; `database_url` / `temporal` override the settings (tests, dev
    stack). With `export_sdk_metrics` the Temporal client runs on a runtime whose metrics `/metrics` merges
    (only for a client built here: a given client keeps its own runtime). `tracing`: the process's
    (`telemetry.tracing.process_tracing`); None = off. It traces the database engine and the Temporal
    client (a given one too), and through the client the worker built on it."""
    tracing = tracing or Tracing()
    url = database_url or database_url_of(settings)
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        tracing.instrument_engine(engine)
        sessions = session_factory(engine)
        statements = create_statement_engine(url)
        stack.push_async_callback(statements.dispose)
        tracing.instrument_engine(statements)
        # Both tables of hierarchical settings use the policy cache's TTL: one knob for one mechanism.
        ttl = settings.policy_cache_ttl_seconds
        policy_cache, notification_cache = PolicyCache(ttl), NotificationSettingsCache(ttl)
        listener = SettingsListener(url, [policy_cache, notification_cache])
        await listener.start()
        stack.push_async_callback(listener.stop)
        policies = PolicyResolver(sessions, policy_cache, listener)
        notification_settings = NotificationSettings(sessions, notification_cache, listener)
        # One budget per API key for every process (worker, API, more workers): Cal.com counts per key.
        budget = PgRateBudget(sessions, budget_key(settings.calcom_url(), settings.calcom_api_key))
        calcom = await stack.enter_async_context(CalcomClient.from_settings(settings, budget))
        slots = SlotFinder(
            calcom,
            store_resolver(sessions),
            cache=slot_cache(settings.calcom_cache_ttl_seconds),
            chunk_days=settings.calcom_search_chunk_days,
        )
        sdk = sdk_metrics() if temporal is None and export_sdk_metrics else None
        if temporal is not None:
            client = tracing.traced(temporal)
        else:
            client = await connect(
                settings, runtime=sdk.runtime if sdk else None, retry_config=retry_config, tracing=tracing
            )
        yield Services(
            settings=settings,
            database_url=url,
            engine=engine,
            sessions=sessions,
            statements=statements,
            policies=policies,
            notification_settings=notification_settings,
            settings_listener=listener,
            calcom=calcom,
            slots=slots,
            temporal=client,
            sdk=sdk,
            tracing=tracing,
        )


def api_deps(services: Services) -> Deps:
    """The API's view of the composition root: the same cached settings and slot finder as the worker."""
    return Deps.build(
        services.settings,
        services.sessions,
        CallbackClient(
            services.temporal,
            services.settings.task_queue,
            timeout=services.settings.api_temporal_timeout_seconds,
        ),
        services.slots,
        policies=services.policies,
        sdk_metrics_url=services.sdk.url if services.sdk else None,
        notification_settings=services.notification_settings,
    )


@contextlib.asynccontextmanager
async def open_api_deps(settings: Settings, tracing: Tracing | None = None) -> AsyncIterator[Deps]:
    """What an API process opens at startup (the app's lifespan) and closes at shutdown. Its Temporal
    client gives up retrying on its own well within the API's deadline, so that a refusal (too many
    Updates in flight) reaches the caller as a 429 and not as a timeout."""
    retries = api_retry_config(settings.api_temporal_timeout_seconds)
    async with open_services(settings, retry_config=retries, tracing=tracing) as services:
        yield api_deps(services)
