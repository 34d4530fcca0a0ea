"""The demo's customer notifications: a local SMTP sink as every customer's inbox, some
customers reading Chinese, and the summary's `notifications`.

`notifications` in the summary counts outbox rows by status, channel and event, and checks
the issue's promise from what the sink received: each delivered order's customer got the
dispatched, arriving, arrived and delivered messages once each, with a tracking link.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import psycopg

from ingest_service.notify.mailbox import Mailbox
from tracklane.demo_warehouse import CUSTOMERS, customer_email

# Customers whose mail is in Chinese (the rest in English).
ZH_CUSTOMERS = frozenset({"C-BOLT", "C-EBBE"})
PROMISED = ("dispatched", "arriving", "arrived", "delivered")


def prepare_customers(database_url: str) -> None:
    """Create the demo's customers up front with their language (orders keep them)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for ref, name, *_ in CUSTOMERS:
            conn.execute(
                "INSERT INTO customers (ref, name, email, locale) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (ref) DO UPDATE SET locale = EXCLUDED.locale",
                (ref, name, customer_email(ref),
                 "zh-CN" if ref in ZH_CUSTOMERS else "en"),
            )  # fmt: skip


def wait_for_outbox(database_url: str, timeout_s: float = 20.0) -> int:
    """Wait until no email is due and unsent (the sender passes every couple of seconds);
    return how many are still pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        with psycopg.connect(database_url) as conn:
            pending = conn.execute(
                "SELECT count(*) FROM notifications WHERE status = 'pending'"
                " AND channel = 'email' AND next_attempt_at <= now()"
            ).fetchone()[0]  # type: ignore[index]
        if not pending or time.monotonic() > deadline:
            return int(pending)
        time.sleep(0.5)


def summary(database_url: str, mailbox: Mailbox, numbers: list[str]) -> dict[str, Any]:
    """`numbers`: the demo's orders. Counts per status/channel/event, what the sink got, and
    the delivered orders whose customer missed a promised message or got one twice."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT n.id, n.status, n.channel, n.event, o.number, o.state FROM notifications n"
            " JOIN orders o ON o.id = n.order_id WHERE o.number = ANY(%s)",
            (numbers,),
        ).fetchall()
    by_id = {r[0]: r for r in rows}
    counts: dict[str, Counter[str]] = {}
    for _, status, channel, event, _, _ in rows:
        counts.setdefault(status, Counter())[f"{channel}:{event}"] += 1
    received: Counter[tuple[str, str]] = Counter()
    linked: set[str] = set()
    for m in mailbox.messages():
        row = by_id.get(m.notification_id or -1)
        if row is not None:
            received[(row[4], row[3])] += 1
            if m.tracking_token:
                linked.add(row[4])
    delivered = sorted({r[4] for r in rows if r[5] == "delivered"})
    incomplete = [
        n for n in delivered
        if any(received[(n, e)] != 1 for e in PROMISED) or n not in linked
    ]  # fmt: skip
    return {
        "notifications": {
            "by_status": {s: dict(sorted(c.items())) for s, c in sorted(counts.items())},
            "mail_received": sum(received.values()),
            "delivered_orders": len(delivered),
            "delivered_orders_fully_notified": len(delivered) - len(incomplete),
            "incomplete": incomplete,
        }
    }
