"""The sender: one pass over the due outbox rows (`run_once`), and the loop (`run_forever`).

Each row is one order, event and channel. It is claimed in its own transaction with `FOR
UPDATE SKIP LOCKED` and stays locked while it is sent, so two senders never send one row:
the other skips it, and once it commits the row is no longer pending. The attempt, its
delivery log row and the row's new status commit together. A crash after the receiver took
the message and before the commit sends it again (at least once; the notification id is
stable, in the Message-ID and the webhook's id header, so a receiver can recognise it).

Only rows of the channels this sender was given are claimed: the others wait (pending) for a
sender that has them, e.g. SMS rows until TRACKLANE_SMS_URL is set. The customer's address is
read when the row is sent: a channel turned off or emptied since the event makes the row
dead ('no channel: ...'). Quiet hours move next_attempt_at to the end of the window without
counting an attempt; they hold people's phones and inboxes, not webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ingest_service.notify.channels import Channel, Outgoing, PermanentFailure, Target
from ingest_service.notify.links import link_for, tracking_url
from notifications import QuietHours, RetryPolicy, next_allowed, render, retry_delay
from notifications.templates import template_context

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000

_CLAIM = """
SELECT n.id, n.order_id, n.event, n.channel, n.locale, n.payload, n.attempts,
       c.email, c.notify_email, c.phone, c.notify_sms, c.webhook_url, c.notify_webhook,
       c.webhook_secret, c.webhook_allow_private, c.chat_url, c.notify_chat,
       c.time_zone, c.quiet_start, c.quiet_end
FROM notifications n
JOIN customers c ON c.id = n.customer_id
WHERE n.status = 'pending' AND n.next_attempt_at <= %s AND n.channel = ANY(%s)
ORDER BY n.next_attempt_at, n.id
LIMIT 1
FOR UPDATE OF n SKIP LOCKED
"""

# Per channel: the customer's column holding the address, and the switch.
_ADDRESS = {
    "email": ("email", "notify_email", "no email address"),
    "sms": ("phone", "notify_sms", "no phone number"),
    "webhook": ("webhook_url", "notify_webhook", "no webhook URL"),
    "chat": ("chat_url", "notify_chat", "no chat URL"),
}
# Channels that reach a person; quiet hours hold them.
_PERSONAL = frozenset({"email", "sms", "chat"})
LINK_CREATOR = "notifier"


@dataclass
class PassResult:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0  # quiet hours

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.dead + self.deferred


def _zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r: using UTC", name)
        return UTC


def _error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_CHARS]


def target_for(channel: str, row: Mapping[str, Any]) -> Target | str:
    """The customer's target on this channel now, or why there is none."""
    column, switch, missing = _ADDRESS[channel]
    address = (row[column] or "").strip()
    if not address:
        return f"no channel: {missing}"
    if not row[switch]:
        return f"no channel: {channel} is off"
    if channel == "webhook":
        return Target(address, row["webhook_secret"], bool(row["webhook_allow_private"]))
    return Target(address)


async def run_once(
    conn: AsyncConnection[Any],
    now: datetime,
    channels: Mapping[str, Channel],
    *,
    policy: RetryPolicy | None = None,
    limit: int = 100,
    rand: Callable[[], float] = random.random,
    public_url: str | None = None,
) -> PassResult:
    """Send what is due at `now` on these channels, at most `limit` rows. `conn` must not be
    in a transaction (autocommit, or idle): each row gets its own. With `public_url`, each
    message carries the order's tracking link (made on first use)."""
    policy = policy or RetryPolicy()
    result = PassResult()
    names = sorted(channels)
    for _ in range(limit):
        async with conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(_CLAIM, (now, names))
            row = await cur.fetchone()
            if row is None:
                break
            channel = channels[row["channel"]]
            await _handle(conn, row, now, channel, policy, rand, public_url, result)
    return result


async def _handle(
    conn: AsyncConnection[Any],
    row: dict[str, Any],
    now: datetime,
    channel: Channel,
    policy: RetryPolicy,
    rand: Callable[[], float],
    public_url: str | None,
    result: PassResult,
) -> None:
    nid = row["id"]
    target = target_for(row["channel"], row)
    if isinstance(target, str):
        await conn.execute(
            "UPDATE notifications SET status = 'dead', last_error = %s WHERE id = %s",
            (target, nid),
        )
        result.dead += 1
        return

    zone = _zone(row["time_zone"])
    quiet = (
        QuietHours(row["quiet_start"], row["quiet_end"])
        if row["quiet_start"] is not None and row["quiet_end"] is not None
        else None
    )
    allowed = next_allowed(now, quiet, zone) if row["channel"] in _PERSONAL else now
    if allowed > now:
        await conn.execute(
            "UPDATE notifications SET next_attempt_at = %s WHERE id = %s", (allowed, nid)
        )
        result.deferred += 1
        return

    attempt = row["attempts"] + 1
    error: str | None = None
    permanent = False
    try:
        url = None
        if public_url:
            url = tracking_url(public_url, await link_for(conn, row["order_id"], LINK_CREATOR))
        context = template_context(row["payload"], row["locale"], zone, url)
        message = render(row["event"], row["locale"], context)
        out = Outgoing(nid, row["event"], row["locale"], row["payload"], message, url)
        await channel.send(target, out, now=now)
    except PermanentFailure as e:
        error, permanent = _error_text(e), True
    except Exception as e:  # any failure to send is this attempt's outcome, never the pass's
        error = _error_text(e)

    await conn.execute(
        "INSERT INTO notification_deliveries"
        " (notification_id, channel, address, attempt, at, outcome, error)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (nid, channel.name, _logged_address(row["channel"], target.address), attempt, now,
         "failed" if error else "sent", error),
    )  # fmt: skip
    if error is None:
        await conn.execute(
            "UPDATE notifications SET status = 'sent', attempts = %s, sent_at = %s,"
            " last_error = NULL WHERE id = %s",
            (attempt, now, nid),
        )
        result.sent += 1
    elif permanent or policy.is_dead(attempt):
        await conn.execute(
            "UPDATE notifications SET status = 'dead', attempts = %s, last_error = %s"
            " WHERE id = %s",
            (attempt, error, nid),
        )
        log.warning("notification %s is dead after %s attempt(s): %s", nid, attempt, error)
        result.dead += 1
    else:
        delay = retry_delay(attempt, rand(), policy)
        await conn.execute(
            "UPDATE notifications SET attempts = %s, last_error = %s, next_attempt_at = %s"
            " WHERE id = %s",
            (attempt, error, now + timedelta(seconds=delay), nid),
        )
        result.retried += 1


def _logged_address(channel: str, address: str) -> str:
    """What the delivery log keeps of the address: a chat URL holds its credentials, so only
    its scheme is kept; a webhook URL only up to its path (a query may carry a token)."""
    if channel == "chat":
        return address.split("://", 1)[0] + "://…"
    if channel == "webhook":
        return address.split("?", 1)[0]
    return address


async def run_forever(
    database_url: str,
    channels: Mapping[str, Channel],
    stop: asyncio.Event,
    *,
    interval_s: float = 5.0,
    policy: RetryPolicy | None = None,
    public_url: str | None = None,
) -> None:
    """Pass after pass until `stop` is set; reconnects after a database error."""
    log.info("notification sender: channels %s", ", ".join(sorted(channels)) or "none")
    while not stop.is_set():
        try:
            async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
                while not stop.is_set():
                    result = await run_once(
                        conn, datetime.now(UTC), channels, policy=policy, public_url=public_url
                    )
                    if result.handled:
                        log.info("notifications: %s", result)
                        continue  # there may be more due
                    await _sleep(stop, interval_s)
        except Exception:
            log.exception("notification sender failed; retrying in %ss", interval_s)
            await _sleep(stop, interval_s)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
