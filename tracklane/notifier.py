"""The notification sender inside `tracklane serve` and `tracklane demo` (and, with email,
the suppliers' ASN reminders).

Which channels a process sends on follows from its settings: email with TRACKLANE_SMTP_URL,
SMS with TRACKLANE_SMS_URL, webhooks and chat always (their addresses are the customers').
Rows of a channel no process has stay pending, visible in GET /api/v1/notifications. Every
serve process runs a sender; SKIP LOCKED keeps them from sending a row twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
from psycopg import AsyncConnection

from ingest_service.inbound.reminders import send_due_reminders
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


async def remind_suppliers(
    database_url: str, email: EmailChannel, stop: asyncio.Event, *, interval_s: float = 60.0
) -> None:
    """Suppliers' ASN reminders (docs/inbound.md), by mail, checked every `interval_s`."""

    async def send(to: str, subject: str, text: str) -> None:
        key = "asn-reminder-" + hashlib.sha256(f"{to}|{subject}".encode()).hexdigest()[:16]
        await email.send_text(to, subject, text, key=key, now=datetime.now(UTC))

    while not stop.is_set():
        try:
            async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
                sent = await send_due_reminders(conn, datetime.now(UTC), send)
                if sent:
                    log.info("supplier reminders: %d sent", sent)
        except Exception:
            log.exception("supplier reminders failed; trying again in %ss", interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


@contextmanager
def notifier_running(
    settings: Settings,
    database_url: str,
    *,
    enabled: bool = True,
    reminder_interval_s: float = 60.0,
) -> Iterator[None]:
    """Run the sender (and, with email, the suppliers' reminders) in a thread with its own
    event loop until the block ends."""
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
        email = channels.get("email")
        if isinstance(email, EmailChannel):
            reminders = remind_suppliers(database_url, email, stop, interval_s=reminder_interval_s)
            loop.run_until_complete(asyncio.gather(sender, reminders))
        else:
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
