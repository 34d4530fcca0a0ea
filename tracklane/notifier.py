"""The notification sender inside `tracklane serve` and `tracklane demo`.

Which channels a process sends on follows from its settings: email with TRACKLANE_SMTP_URL,
SMS with TRACKLANE_SMS_URL, webhooks and chat always (their addresses are the customers').
Rows of a channel no process has stay pending, visible in GET /api/v1/notifications. Every
serve process runs a sender; SKIP LOCKED keeps them from sending a row twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from ingest_service.notify import Channel, EmailChannel, parse_smtp_url, run_forever
from ingest_service.notify.apprise_channel import ChatChannel, SmsChannel
from ingest_service.notify.webhook import WebhookChannel
from ingest_service.settings import Settings

log = logging.getLogger(__name__)


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {"webhook": WebhookChannel(), "chat": ChatChannel()}
    if settings.smtp_url is not None:
        config = parse_smtp_url(settings.smtp_url.get_secret_value())
        channels["email"] = EmailChannel(config, settings.smtp_from)
    else:
        log.warning("no TRACKLANE_SMTP_URL: email notifications wait (pending) until it is set")
    if settings.sms_url is not None:
        channels["sms"] = SmsChannel(settings.sms_url.get_secret_value())
    return channels


def apply_notification_settings(settings: Settings, database_url: str) -> None:
    """The thresholds the outbox triggers read (0007's notification_settings row)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE notification_settings SET eta_moved_min = %s, eta_moved_max = %s",
            (settings.notify_eta_moved_min, settings.notify_eta_moved_max),
        )


@contextmanager
def notifier_running(
    settings: Settings, database_url: str, *, enabled: bool = True
) -> Iterator[None]:
    """Run the sender in a thread with its own event loop until the block ends."""
    if not enabled:
        yield
        return
    apply_notification_settings(settings, database_url)
    channels = build_channels(settings)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        sender = run_forever(
            database_url,
            channels,
            stop,
            interval_s=settings.notify_interval_s,
            public_url=settings.public_url,
        )
        loop.run_until_complete(sender)

    thread = threading.Thread(target=run, name="notifier", daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        if not thread.is_alive():
            loop.close()
