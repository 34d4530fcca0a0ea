"""`tracklane serve`: the ingest consumer and the HTTP API in one process.

Several of these can run side by side against one broker and database: the shared MQTT
subscription splits the traffic, and each needs its own TRACKLANE_INGEST_CLIENT_ID.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import uvicorn
from prometheus_client import REGISTRY, CollectorRegistry

from ingest_service.notify.mailbox import Mailbox
from ingest_service.pipeline.consumer import ConsumerConfig, IngestConsumer
from ingest_service.pipeline.stats import IngestStats
from ingest_service.settings import Settings
from ingest_service.storage.migrate import detect_mode, migrate
from ingest_service.storage.mode import StorageMode
from mqtt_client import parse_mqtt_url

log = logging.getLogger(__name__)


def consumer_config(settings: Settings) -> ConsumerConfig:
    return ConsumerConfig(
        client_id=settings.ingest_client_id,
        share_group=settings.ingest_share_group,
        session_expiry_s=settings.ingest_session_expiry_s,
        receive_maximum=settings.ingest_receive_maximum,
        batch_events=settings.ingest_batch_events,
        linger_ms=settings.ingest_linger_ms,
        max_future_s=settings.ingest_max_future_s,
        ca_file=settings.mqtt_ca_file,
        arriving_eta_min=settings.arriving_eta_min,
        approach_radius_m=settings.approach_radius_m,
        stale_tracker_min=settings.stale_tracker_min,
        fence_min_dwell_s=settings.fence_min_dwell_s,
        fence_inner_margin_m=settings.fence_inner_margin_m,
        fence_outer_margin_m=settings.fence_outer_margin_m,
    )


def with_public_url(settings: Settings, port: int | None) -> Settings:
    """Tracking links point at this API unless TRACKLANE_PUBLIC_URL says where customers
    reach it (production must say)."""
    if "public_url" in settings.model_fields_set:
        return settings
    url = f"http://{settings.api_host}:{port or settings.api_port}"
    return settings.model_copy(update={"public_url": url})


def prepare_database(settings: Settings, database_url: str, *, run_migrations: bool) -> StorageMode:
    if run_migrations:
        return migrate(
            database_url,
            retention_days=settings.retention_days,
            compress_after_days=settings.compress_after_days,
        )
    return detect_mode(database_url)


def bootstrap_admin(settings: Settings, database_url: str) -> None:
    """Create the first admin from TRACKLANE_ADMIN_PASSWORD when there is none."""
    if settings.admin_password is None:
        return
    from ingest_service.auth.users import ensure_admin

    with psycopg.connect(database_url, autocommit=True) as conn:
        created = ensure_admin(
            conn,
            username=settings.admin_username,
            password=settings.admin_password.get_secret_value(),
        )
    if created:
        log.info("created admin user %r", settings.admin_username)


@dataclass
class Running:
    consumer: IngestConsumer | None
    stats: IngestStats
    storage_mode: StorageMode


@contextmanager
def ingest_running(
    settings: Settings,
    *,
    database_url: str,
    mqtt_url: str,
    storage_mode: StorageMode,
    ingest: bool = True,
    registry: CollectorRegistry | None = REGISTRY,
) -> Iterator[Running]:
    stats = IngestStats(registry)
    consumer = None
    if ingest:
        consumer = IngestConsumer(
            broker=parse_mqtt_url(mqtt_url),
            database_url=database_url,
            config=consumer_config(settings),
            stats=stats,
        ).start()
    try:
        yield Running(consumer, stats, storage_mode)
    finally:
        if consumer:
            consumer.stop()


def api_server(
    settings: Settings,
    *,
    database_url: str,
    running: Running,
    port: int | None = None,
    mailbox: Mailbox | None = None,
) -> uvicorn.Server:
    from ingest_service.api.app import create_app

    app = create_app(
        settings=settings,
        database_url=database_url,
        storage_mode=running.storage_mode,
        ingest_health=running.consumer.health if running.consumer else None,
        mailbox=mailbox,
    )
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # The live stream's frames are small JSON sent often: per-message deflate doubled
        # the API's CPU per item and cost the latency target (`tracklane bench live`).
        ws_per_message_deflate=False,
    )
    return uvicorn.Server(config)


@contextmanager
def api_in_thread(server: uvicorn.Server) -> Iterator[threading.Thread]:
    """Serve the API from a thread, so that signals stay with the main thread and every
    `with` block above (ingest, embedded database and broker) unwinds on SIGTERM."""
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        raise RuntimeError(
            f"the API did not start on {server.config.host}:{server.config.port}; "
            "see the log above (is the port taken? set TRACKLANE_API_PORT)"
        )
    try:
        yield thread
    finally:
        server.should_exit = True
        thread.join(10)


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM. Install it first thing, so that a signal during
    start-up still unwinds every `with` block instead of killing the process."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def wait_for(stop: threading.Event, *, watch: threading.Thread | None = None) -> None:
    """Block until `stop` is set (or until `watch` dies)."""
    while not stop.wait(0.5):
        if watch is not None and not watch.is_alive():
            log.error("the API stopped; shutting down")
            return
