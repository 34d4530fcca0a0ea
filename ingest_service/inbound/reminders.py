"""Send the ASN reminders that are due: one mail per PO, recorded in `supplier_reminders`.

The rule is `inbound.reminders.reminder_due`; this finds the candidates in PostgreSQL and
sends each in its own transaction. The PO row is locked with SKIP LOCKED and the reminder row
is inserted before the mail goes out, so two workers never send the same PO's reminder: the
second skips the locked PO, or finds the reminder row and sends nothing. A failed send rolls
its transaction back; the PO is tried again on the next call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from inbound.purchase_orders import PoStatus
from inbound.reminders import PoWaiting, due_on, reminder_due, reminder_mail

log = logging.getLogger(__name__)

Send = Callable[[str, str, str], Awaitable[None]]

# Candidates only; `reminder_due` has the last word. Dates are UTC days.
_NEXT_DUE = """
SELECT po.id, po.number, po.site, po.status, po.delivery_date, s.name, s.email, s.reminder_days
FROM purchase_orders po JOIN suppliers s ON s.id = po.supplier_id
WHERE po.status IN ('sent', 'acknowledged')
  AND coalesce(s.email, '') <> ''
  AND po.delivery_date - s.reminder_days <= %(today)s AND po.delivery_date >= %(today)s
  AND NOT EXISTS (SELECT 1 FROM asns a WHERE a.po_id = po.id
                  AND a.status IN ('submitted', 'received'))
  AND NOT EXISTS (SELECT 1 FROM supplier_reminders r WHERE r.po_id = po.id)
  AND po.id <> ALL(%(tried)s)
ORDER BY po.delivery_date, po.id
LIMIT 1
FOR UPDATE OF po SKIP LOCKED
"""


async def send_due_reminders(conn: AsyncConnection[Any], now: datetime, send: Send) -> int:
    """Send every reminder due at `now` with `send(to, subject, text)`; how many were sent.

    `conn` must not be inside a transaction: each PO gets its own.
    """
    today = now.astimezone(UTC).date()
    tried: list[int] = []
    sent = 0
    while True:
        po: dict[str, Any] | None = None
        try:
            async with conn.transaction():
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(_NEXT_DUE, {"today": today, "tried": tried})
                po = await cur.fetchone()
                if po is None:
                    return sent
                tried.append(po["id"])
                if await _send_one(conn, po, today=today, now=now, send=send):
                    sent += 1
        except Exception:
            if po is None:
                raise  # the query itself failed: nothing to skip, so stop here
            log.exception("the ASN reminder for purchase order %s was not sent", po["number"])


async def _send_one(
    conn: AsyncConnection[Any], po: dict[str, Any], *, today: date, now: datetime, send: Send
) -> bool:
    status = PoStatus(po["status"])
    waiting = PoWaiting(
        number=po["number"],
        delivery_date=po["delivery_date"],
        reminder_days=po["reminder_days"],
        open=True,
        asn_submitted=False,
        reminded=False,
    )
    if not reminder_due(waiting, today):
        return False
    cur = await conn.execute(
        "INSERT INTO supplier_reminders (po_id, due_on, sent_at, sent_to) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (po_id) DO NOTHING RETURNING po_id",
        (po["id"], due_on(po["delivery_date"], po["reminder_days"]), now, po["email"]),
    )
    if await cur.fetchone() is None:
        return False  # another worker has just sent it
    mail = reminder_mail(
        po_number=po["number"],
        supplier_name=po["name"],
        delivery_date=po["delivery_date"],
        site=po["site"],
        today=today,
        acknowledged=status is PoStatus.ACKNOWLEDGED,
    )
    await send(po["email"], mail.subject, mail.text)
    log.info("sent the ASN reminder for purchase order %s to %s", po["number"], po["email"])
    return True
