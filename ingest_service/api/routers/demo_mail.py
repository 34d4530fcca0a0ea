"""What the demo's customers received (`tracklane demo` only): the local SMTP sink's mail,
by recipient, with each message's event, order and tracking link. Included in the app only
when a mailbox is given (create_app(mailbox=...)); the dashboard's /mail.html shows it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from ingest_service.auth import PoolDep, Role, requires

router = APIRouter(tags=["demo"])


class MailItem(BaseModel):
    at: str
    subject: str
    text: str
    event: str | None
    order_number: str | None
    tracking_path: str | None  # /t/{token}: the page the link opens


class Inbox(BaseModel):
    to: str
    messages: list[MailItem]


@router.get(
    "/demo/mailbox",
    dependencies=[Depends(requires(Role.DISPATCHER))],
    summary="The demo's customer mail, by recipient (newest last)",
)
async def mailbox(request: Request, pool: PoolDep) -> list[Inbox]:
    received = request.app.state.mailbox.messages()
    ids = sorted({m.notification_id for m in received if m.notification_id is not None})
    known: dict[int, tuple[str, str]] = {}
    if ids:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT n.id, n.event, o.number FROM notifications n"
                " JOIN orders o ON o.id = n.order_id WHERE n.id = ANY(%s)",
                (ids,),
            )
            known = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
    boxes: dict[str, list[MailItem]] = {}
    for m in received:
        event, number = known.get(m.notification_id or -1, (None, None))
        item = MailItem(
            at=m.at.isoformat(),
            subject=m.subject,
            text=m.text,
            event=event,
            order_number=number,
            tracking_path=f"/t/{m.tracking_token}" if m.tracking_token else None,
        )
        for to in m.to:
            boxes.setdefault(to, []).append(item)
    return [Inbox(to=to, messages=items) for to, items in sorted(boxes.items())]
