"""The notification tables as the admin API reads and changes them: a customer's channel
settings, the delivery log per order, recent notifications, and retrying a dead one.

Refusals are `ingest_service.dispatch.errors` ones (404 unknown, 409 in the wrong state); the
route turns them into problem documents with `as_http`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from ingest_service.dispatch.errors import Conflict, NotFound

# What a route may change on a customer; anything else is refused before it reaches SQL.
SETTING_COLUMNS = frozenset(
    {
        "notify_email",
        "notify_sms",
        "notify_webhook",
        "notify_chat",
        "notify_events",
        "locale",
        "time_zone",
        "quiet_start",
        "quiet_end",
        "webhook_url",
        "webhook_secret",
        "webhook_allow_private",
        "chat_url",
    }
)

_SETTINGS = """
SELECT id, ref, email, phone, notify_email, notify_sms, notify_webhook, notify_chat,
       notify_events, locale, time_zone, quiet_start, quiet_end, webhook_url,
       webhook_allow_private, webhook_secret IS NOT NULL AS webhook_secret_set,
       chat_url IS NOT NULL AS chat_url_set
FROM customers WHERE ref = %s
"""

_NOTIFICATION = """
SELECT n.id, o.number AS order_number, c.ref AS customer, n.event, n.channel, n.status,
       n.attempts, n.last_error, n.created_at, n.sent_at, n.next_attempt_at
FROM notifications n
JOIN orders o ON o.id = n.order_id
JOIN customers c ON c.id = n.customer_id
"""


async def _rows(conn: AsyncConnection[Any], query: Any, params: Any) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchall()


async def customer_settings(
    conn: AsyncConnection[Any], ref: str, *, for_update: bool = False
) -> dict[str, Any]:
    """The customer's notification settings (never the chat URL or webhook secret)."""
    rows = await _rows(conn, _SETTINGS + (" FOR UPDATE" if for_update else ""), (ref,))
    if not rows:
        raise NotFound(f"no customer {ref!r}; customers are created with their first order")
    return rows[0]


async def update_customer(
    conn: AsyncConnection[Any], customer_id: int, values: Mapping[str, Any]
) -> None:
    """Set these columns (names from SETTING_COLUMNS) on the customer."""
    if unknown := set(values) - SETTING_COLUMNS:
        raise ValueError(f"not a notification setting: {sorted(unknown)}")
    if not values:
        return
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = %s").format(sql.Identifier(column)) for column in values
    )
    await conn.execute(
        sql.SQL("UPDATE customers SET {} WHERE id = %s").format(assignments),
        [*values.values(), customer_id],
    )


async def replace_webhook_secret(conn: AsyncConnection[Any], ref: str, secret: str) -> None:
    """A new signing secret for the customer's webhook; the old one stops working now."""
    cur = await conn.execute(
        "UPDATE customers SET webhook_secret = %s WHERE ref = %s RETURNING webhook_url",
        (secret, ref),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no customer {ref!r}")
    if row[0] is None:
        raise Conflict(
            f"customer {ref!r} has no webhook URL, so there is nothing to sign; set webhook_url"
            " with PUT /api/v1/customers/{ref}/notifications (that makes a secret)"
        )


async def order_log(
    conn: AsyncConnection[Any], number: str
) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """The order's notifications, oldest first, and each one's delivery attempts."""
    found = await _rows(conn, "SELECT id FROM orders WHERE number = %s", (number,))
    if not found:
        raise NotFound(f"no order {number!r}")
    notifications = await _rows(
        conn, _NOTIFICATION + " WHERE n.order_id = %s ORDER BY n.id", (found[0]["id"],)
    )
    deliveries: dict[int, list[dict[str, Any]]] = {n["id"]: [] for n in notifications}
    if notifications:
        for d in await _rows(
            conn,
            "SELECT notification_id, channel, address, attempt, at, outcome, error"
            " FROM notification_deliveries WHERE notification_id = ANY(%s) ORDER BY id",
            (list(deliveries),),
        ):
            deliveries[d["notification_id"]].append(d)
    return notifications, deliveries


async def recent_notifications(
    conn: AsyncConnection[Any], *, status: str | None, channel: str | None, limit: int
) -> list[dict[str, Any]]:
    """The newest notifications across orders, optionally of one status and channel."""
    where, params = [], []
    if status is not None:
        where.append("n.status = %s")
        params.append(status)
    if channel is not None:
        where.append("n.channel = %s")
        params.append(channel)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return await _rows(
        conn, _NOTIFICATION + clause + " ORDER BY n.id DESC LIMIT %s", [*params, limit]
    )


async def retry_dead(
    conn: AsyncConnection[Any], notification_id: int, *, now: datetime
) -> dict[str, Any]:
    """A dead notification back in the queue, due now, with its attempts reset."""
    rows = await _rows(
        conn,
        "SELECT status, channel FROM notifications WHERE id = %s FOR UPDATE",
        (notification_id,),
    )
    if not rows:
        raise NotFound(f"no notification {notification_id}")
    status, channel = rows[0]["status"], rows[0]["channel"]
    if status != "dead":
        raise Conflict(
            f"notification {notification_id} is {status}, not dead; only a dead one is retried"
        )
    if channel == "none":
        raise Conflict(
            f"notification {notification_id} had no channel (the customer had none on for the"
            " event), so a retry would reach nobody; turn a channel on for later events"
        )
    await conn.execute(
        "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = %s"
        " WHERE id = %s",
        (now, notification_id),
    )
    return (await _rows(conn, _NOTIFICATION + " WHERE n.id = %s", (notification_id,)))[0]
