"""Notification administration: the template preview, each customer's channel preferences and
webhook secret, the delivery log per order, recent notifications and retrying a dead one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import HTMLResponse
from psycopg.types.json import Jsonb

from ingest_service.auth import PoolDep, Role, SettingsDep, requires
from ingest_service.dispatch.errors import as_http
from ingest_service.notify import admin_store
from ingest_service.notify.apprise_channel import unusable
from ingest_service.notify.netguard import UnsafeDestination, check_url
from notifications import NotificationEvent, render, template_context
from notifications.signing import new_secret
from notifications.templates import sample_payload

from .notification_models import (
    ChannelName,
    Channels,
    Delivery,
    Locale,
    NotificationList,
    NotificationLogEntry,
    NotificationOut,
    OrderNotifications,
    PreferencesIn,
    PreferencesOut,
    PreferencesSaved,
    Preview,
    QuietHours,
    TimeZoneName,
    WebhookSecret,
    mask_address,
)

router = APIRouter(tags=["notifications"])
ADMIN = requires(Role.ADMIN)
READERS = requires(Role.DISPATCHER)  # and admins, who pass every guard

# The preview is our own template around sample data, but it is HTML opened from the API's
# origin: nothing in it may run or load anything.
PREVIEW_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PREVIEW_LINK_PATH = "/t/preview-only-not-a-real-link"


@router.get(
    "/notifications/preview",
    dependencies=[Depends(ADMIN)],
    response_model=Preview,
    responses={200: {"content": {"text/html": {}}, "description": "with format=html"}},
)
async def preview(
    settings: SettingsDep,
    event: NotificationEvent,
    locale: Locale = "en",
    fmt: Annotated[Literal["json", "html"], Query(alias="format")] = "json",
    reason: Annotated[
        Literal["damage", "short_load"] | None, Query(description="for event=exception")
    ] = None,
    time_zone: TimeZoneName = "UTC",
) -> Any:
    """The message `event` sends, rendered with sample data: JSON {subject, text, html}, or
    with format=html the HTML part itself (served under a CSP that allows no script)."""
    payload = sample_payload(event, reason=reason)
    link = f"{settings.public_url.rstrip('/')}{PREVIEW_LINK_PATH}"
    message = render(event, locale, template_context(payload, locale, ZoneInfo(time_zone), link))
    if fmt == "html":
        return HTMLResponse(message.html, headers=PREVIEW_HEADERS)
    return Preview(subject=message.subject, text=message.text, html=message.html)


def _preferences(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer": row["ref"],
        "channels": Channels(
            email=row["notify_email"],
            sms=row["notify_sms"],
            webhook=row["notify_webhook"],
            chat=row["notify_chat"],
        ),
        "events": row["notify_events"],
        "locale": row["locale"],
        "time_zone": row["time_zone"],
        "quiet_hours": QuietHours.of(row["quiet_start"], row["quiet_end"]),
        "email": row["email"],
        "phone": row["phone"],
        "webhook_url": row["webhook_url"],
        "webhook_allow_private": row["webhook_allow_private"],
        "webhook_secret_set": row["webhook_secret_set"],
        "chat_url_set": row["chat_url_set"],
    }


@router.get("/customers/{ref}/notifications", dependencies=[Depends(READERS)])
async def get_preferences(ref: str, pool: PoolDep) -> PreferencesOut:
    """Which channels the customer hears on, for which events, when and in which language."""
    async with pool.connection() as conn:
        with as_http():
            row = await admin_store.customer_settings(conn, ref)
    return PreferencesOut(**_preferences(row))


def _missing_addresses(body: PreferencesIn, row: dict[str, Any]) -> list[str]:
    chat_set = bool(body.chat_url) if "chat_url" in body.model_fields_set else row["chat_url_set"]
    on, ref = body.channels, row["ref"]
    missing = []
    if on.email and not row["email"]:
        missing.append(f"email is on but customer {ref!r} has no email address")
    if on.sms and not row["phone"]:
        missing.append(f"sms is on but customer {ref!r} has no phone number")
    if on.webhook and not body.webhook_url:
        missing.append("webhook is on: set webhook_url (the customer's https:// endpoint)")
    if on.chat and not chat_set:
        missing.append("chat is on: set chat_url (an Apprise URL such as tgram://...)")
    return missing


@router.put("/customers/{ref}/notifications", dependencies=[Depends(ADMIN)])
async def put_preferences(
    ref: str, body: PreferencesIn, pool: PoolDep, response: Response
) -> PreferencesSaved:
    """Replace the customer's preferences. Setting or changing webhook_url makes a new
    signing secret, returned once here as `webhook_secret`. Leave chat_url out to keep it."""
    if body.webhook_url:
        try:
            check_url(body.webhook_url, body.webhook_allow_private)
        except UnsafeDestination as err:  # its message names the problem and the fix
            raise HTTPException(422, f"webhook_url: {err}") from None
    if body.chat_url and (why := unusable(body.chat_url)):
        raise HTTPException(422, f"chat_url: {why}; see https://github.com/caronc/apprise/wiki")
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            row = await admin_store.customer_settings(conn, ref, for_update=True)
        if missing := _missing_addresses(body, row):
            raise HTTPException(422, "; ".join(missing))
        events = body.events_json()
        quiet = body.quiet_hours.times() if body.quiet_hours else (None, None)
        values: dict[str, Any] = {
            "notify_email": body.channels.email,
            "notify_sms": body.channels.sms,
            "notify_webhook": body.channels.webhook,
            "notify_chat": body.channels.chat,
            "notify_events": None if events is None else Jsonb(events),
            "locale": body.locale,
            "time_zone": body.time_zone,
            "quiet_start": quiet[0],
            "quiet_end": quiet[1],
            "webhook_url": body.webhook_url or None,
            "webhook_allow_private": body.webhook_allow_private,
        }
        secret = None
        if not body.webhook_url:
            values["webhook_secret"] = None
        elif body.webhook_url != row["webhook_url"] or not row["webhook_secret_set"]:
            secret = values["webhook_secret"] = new_secret()
        if "chat_url" in body.model_fields_set:
            values["chat_url"] = body.chat_url or None
        await admin_store.update_customer(conn, row["id"], values)
        saved = await admin_store.customer_settings(conn, ref)
    response.headers["Cache-Control"] = "no-store"  # it may carry the new secret
    return PreferencesSaved(**_preferences(saved), webhook_secret=secret)


@router.post("/customers/{ref}/webhook-secret", dependencies=[Depends(ADMIN)])
async def rotate_webhook_secret(ref: str, pool: PoolDep, response: Response) -> WebhookSecret:
    """A new webhook signing secret, shown once; the previous one stops working at once."""
    secret = new_secret()
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            await admin_store.replace_webhook_secret(conn, ref, secret)
    response.headers["Cache-Control"] = "no-store"
    return WebhookSecret(customer=ref, webhook_secret=secret)


@router.get("/orders/{number}/notifications", dependencies=[Depends(READERS)])
async def order_notifications(number: str, pool: PoolDep) -> OrderNotifications:
    """Every notification of the order, oldest first, with each delivery attempt (the
    address masked)."""
    async with pool.connection() as conn:
        with as_http():
            notifications, deliveries = await admin_store.order_log(conn, number)
    entries = [
        NotificationLogEntry(
            **n,
            deliveries=[
                Delivery(
                    attempt=d["attempt"],
                    at=d["at"],
                    outcome=d["outcome"],
                    error=d["error"],
                    address=mask_address(d["channel"], d["address"]),
                )
                for d in deliveries[n["id"]]
            ],
        )
        for n in notifications
    ]
    return OrderNotifications(order_number=number, notifications=entries)


@router.get("/notifications", dependencies=[Depends(READERS)])
async def recent(
    pool: PoolDep,
    status: Literal["pending", "sent", "dead"] | None = None,
    channel: ChannelName | Literal["none"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> NotificationList:
    """The newest notifications across orders (e.g. status=dead: whom we could not reach)."""
    async with pool.connection() as conn:
        rows = await admin_store.recent_notifications(
            conn, status=status, channel=channel, limit=limit
        )
    return NotificationList(items=[NotificationOut(**r) for r in rows])


@router.post("/notifications/{notification_id}/retry", dependencies=[Depends(ADMIN)])
async def retry(notification_id: int, pool: PoolDep) -> NotificationOut:
    """Put a dead notification back in the queue, due now, its attempts reset."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            row = await admin_store.retry_dead(conn, notification_id, now=datetime.now(UTC))
    return NotificationOut(**row)
