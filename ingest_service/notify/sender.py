"""The sender: one pass over the due outbox rows (`run_once`), and the loop (`run_forever`).

Each row is claimed in its own transaction with `FOR UPDATE SKIP LOCKED` and stays locked
while it is sent, so two senders never send one row: the other skips it, and once it commits
the row is no longer pending. The attempt, its delivery log row and the row's new status
commit together. A crash after the server took the message and before the commit sends it
again (at least once; the Message-ID is stable per notification, so it can be recognised).

A row whose customer has no email address, or has turned email off, has no channel: it is
marked dead with last_error 'no channel' (nothing was sent; it is not counted as sent).
Quiet hours move next_attempt_at to the end of the window without counting an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ingest_service.notify.mail import EmailChannel, PermanentFailure
from notifications import QuietHours, RetryPolicy, next_allowed, render, retry_delay
from notifications.templates import template_context

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000

_CLAIM = """
SELECT n.id, n.order_id, n.event, n.locale, n.payload, n.attempts,
       c.email, c.notify_email, c.time_zone, c.quiet_start, c.quiet_end
FROM notifications n
JOIN customers c ON c.id = n.customer_id
WHERE n.status = 'pending' AND n.next_attempt_at <= %s
ORDER BY n.next_attempt_at, n.id
LIMIT 1
FOR UPDATE OF n SKIP LOCKED
"""


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


async def run_once(
    conn: AsyncConnection[Any],
    now: datetime,
    email: EmailChannel,
    *,
    policy: RetryPolicy | None = None,
    limit: int = 100,
    rand: Callable[[], float] = random.random,
    tracking_url: Callable[[int], str | None] = lambda _order_id: None,
) -> PassResult:
    """Send what is due at `now`, at most `limit` rows. `conn` must not be in a transaction
    (autocommit, or idle): each row gets its own."""
    policy = policy or RetryPolicy()
    result = PassResult()
    for _ in range(limit):
        async with conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(_CLAIM, (now,))
            row = await cur.fetchone()
            if row is None:
                break
            await _handle(conn, row, now, email, policy, rand, tracking_url, result)
    return result


async def _handle(
    conn: AsyncConnection[Any],
    row: dict[str, Any],
    now: datetime,
    email: EmailChannel,
    policy: RetryPolicy,
    rand: Callable[[], float],
    tracking_url: Callable[[int], str | None],
    result: PassResult,
) -> None:
    nid = row["id"]
    address = (row["email"] or "").strip()
    if not address or not row["notify_email"]:
        reason = "no channel: no email address" if not address else "no channel: email is off"
        await conn.execute(
            "UPDATE notifications SET status = 'dead', last_error = %s WHERE id = %s",
            (reason, nid),
        )
        result.dead += 1
        return

    zone = _zone(row["time_zone"])
    quiet = (
        QuietHours(row["quiet_start"], row["quiet_end"])
        if row["quiet_start"] is not None and row["quiet_end"] is not None
        else None
    )
    allowed = next_allowed(now, quiet, zone)
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
        context = template_context(
            row["payload"], row["locale"], zone, tracking_url(row["order_id"])
        )
        message = render(row["event"], row["locale"], context)
        await email.send(address, message, notification_id=nid, date=now)
    except PermanentFailure as e:
        error, permanent = _error_text(e), True
    except Exception as e:  # any failure to send is this attempt's outcome, never the pass's
        error = _error_text(e)

    await conn.execute(
        "INSERT INTO notification_deliveries"
        " (notification_id, channel, address, attempt, at, outcome, error)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (nid, email.name, address, attempt, now, "failed" if error else "sent", error),
    )
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


async def run_forever(
    database_url: str,
    email: EmailChannel,
    stop: asyncio.Event,
    *,
    interval_s: float = 5.0,
    policy: RetryPolicy | None = None,
) -> None:
    """Pass after pass until `stop` is set; reconnects after a database error."""
    while not stop.is_set():
        try:
            async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
                while not stop.is_set():
                    result = await run_once(conn, datetime.now(UTC), email, policy=policy)
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
