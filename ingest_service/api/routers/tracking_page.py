"""The customer's tracking page at /t/{token}, and the staff routes that make and revoke links.

Public: `GET /t/{token}` (the page, en or zh-CN from Accept-Language), `GET
/t/{token}/status` (its JSON, built by notifications/tracking_view.py from an allowlist) and
`GET /t/assets/{name}` (its script and style). An unknown, revoked or expired token is the
same 404. Per client address, requests to a token and unknown tokens are rate limited
(moving window, in memory): over either limit is a 429 with Retry-After, and a client over
the miss limit is refused even with a good token until its misses age out.
See docs/notifications.md, "Tracking page".
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from psycopg import AsyncConnection
from pydantic import BaseModel

from dashboard import attribution_text, content_security_policy
from dashboard.track import STATIC_DIR, STATIC_FILES, render_message, render_page
from ingest_service.auth import CurrentUser, PoolDep, Role, SettingsDep, client_address, requires
from ingest_service.notify import links
from ingest_service.settings import Settings
from notifications.tracking_view import (
    OrderRow,
    StopRow,
    VehicleFix,
    choose_language,
    iso,
    link_expires_at,
    link_is_live,
    tracking_status,
    vehicle_shown,
)

router = APIRouter(tags=["tracking"])
LINK_MANAGERS = requires(Role.DISPATCHER)
NOT_FOUND_DETAIL = "no such tracking link"

_ORDER_SQL = """
SELECT o.id, o.number, o.state, o.created_at, o.window_start, o.window_end, o.trip_id,
       o.stop_seq,
       CASE WHEN o.state IN ('delivered', 'cancelled') THEN coalesce(least(
           (SELECT d.delivered_at FROM deliveries d
             WHERE d.order_id = o.id AND o.state = 'delivered'),
           (SELECT min(e.at) FROM order_events e
             WHERE e.order_id = o.id AND e.kind = 'state' AND e.to_state = o.state)),
           o.updated_at) END
FROM orders o
"""


def _headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings.map_tile_url),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",  # the token is in the URL
        "Cache-Control": "no-store",
        "X-Robots-Tag": "noindex, nofollow",
    }


class _Refused(Exception):
    def __init__(self, retry_after_s: float) -> None:
        self.retry_after = str(max(1, math.ceil(retry_after_s)))


class TrackingLimiter:
    """Per client address: requests to /t/{token}... and unknown tokens, per moving minute."""

    def __init__(self, requests_per_min: int, misses_per_min: int) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._requests = RateLimitItemPerMinute(requests_per_min)
        self._misses = RateLimitItemPerMinute(misses_per_min)

    def admit(self, client: str) -> None:
        """Raise _Refused when the client is over either limit; count the request."""
        for item, counts in ((self._misses, False), (self._requests, True)):
            allowed = (
                self._limiter.hit(item, client) if counts else self._limiter.test(item, client)
            )
            if not allowed:
                reset = self._limiter.get_window_stats(item, client).reset_time
                raise _Refused(reset - time.time())

    def missed(self, client: str) -> None:
        self._limiter.hit(self._misses, client)


def _limiter(request: Request) -> TrackingLimiter:
    # One per app, made on first use: create_app knows nothing of this router's state.
    state = request.app.state
    limiter = getattr(state, "tracking_limiter", None)
    if limiter is None:
        settings = state.settings
        limiter = TrackingLimiter(settings.tracking_rate_per_min, settings.tracking_misses_per_min)
        state.tracking_limiter = limiter
    return limiter


def _order_row(row: tuple[Any, ...]) -> OrderRow:
    return OrderRow(
        number=row[1],
        state=row[2],
        created_at=row[3],
        window_start=row[4],
        window_end=row[5],
        closed_at=row[8],
    )


async def _read_status(
    conn: AsyncConnection[Any], token: str, settings: Settings
) -> dict[str, Any] | None:
    """The status JSON for a live token, or None (unknown, revoked or expired alike)."""
    cur = await conn.execute(
        _ORDER_SQL + " JOIN tracking_links l ON l.order_id = o.id"
        " WHERE l.token = %s AND l.revoked_at IS NULL",
        (token,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    order = _order_row(row)
    if not link_is_live(order, settings.tracking_link_days, datetime.now(UTC)):
        return None
    order_id, trip_id, stop_seq = row[0], row[6], row[7]
    cur = await conn.execute(
        "SELECT CASE WHEN kind = 'created' THEN 'created' ELSE to_state END, min(at)"
        " FROM order_events WHERE order_id = %s AND kind IN ('created', 'state')"
        " GROUP BY 1",
        (order_id,),
    )
    reached = {state: at for state, at in await cur.fetchall() if state}
    stop = None
    vehicle_id = None
    if trip_id is not None and stop_seq is not None:
        cur = await conn.execute(
            "SELECT t.state, t.vehicle_id, s.eta_earliest, s.eta_latest,"
            " (SELECT min(n.seq) FROM trip_stops n"
            "   WHERE n.trip_id = t.id AND n.state IN ('pending', 'arriving'))"
            " FROM trips t JOIN trip_stops s ON s.trip_id = t.id AND s.seq = %s"
            " WHERE t.id = %s",
            (stop_seq, trip_id),
        )
        if found := await cur.fetchone():
            vehicle_id = found[1]
            stop = StopRow(found[0], stop_seq, found[4], found[2], found[3])
    vehicle = None
    if vehicle_id is not None and vehicle_shown(order, stop):
        cur = await conn.execute(
            "SELECT lat, lon, heading_deg, last_fix_at FROM vehicle_state WHERE vehicle_id = %s"
            " AND lat IS NOT NULL AND lon IS NOT NULL AND last_fix_at IS NOT NULL",
            (vehicle_id,),
        )
        if fix := await cur.fetchone():
            vehicle = VehicleFix(*fix)
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM exceptions WHERE order_id = %s AND kind = 'delay'"
        " AND status <> 'resolved')",
        (order_id,),
    )
    delay = await cur.fetchone()
    return tracking_status(
        order,
        reached=reached,
        stop=stop,
        vehicle=vehicle,
        delay_open=bool(delay and delay[0]),
        link_days=settings.tracking_link_days,
    )


async def _status_or_refusal(
    request: Request, token: str, pool: Any, settings: Settings
) -> dict[str, Any] | _Refused | None:
    limiter = _limiter(request)
    client = client_address(request)
    try:
        limiter.admit(client)
    except _Refused as refused:
        return refused
    async with pool.connection() as conn, conn.transaction():
        found = await _read_status(conn, token, settings)
    if found is None:
        limiter.missed(client)
    return found


@router.get("/t/assets/{name}", include_in_schema=False)
async def asset(name: str, settings: SettingsDep) -> Response:
    """The page's script and style (only these names: nothing else in the folder is served)."""
    if name not in STATIC_FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    headers = {**_headers(settings), "Cache-Control": "no-cache"}
    return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name], headers=headers)


@router.get("/t/{token}", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request, token: str, pool: PoolDep, settings: SettingsDep) -> Response:
    """The customer's tracking page."""
    lang = choose_language(request.headers.get("accept-language"))
    headers = {**_headers(settings), "Content-Language": lang, "Vary": "Accept-Language"}
    found = await _status_or_refusal(request, token, pool, settings)
    if isinstance(found, _Refused):
        headers["Retry-After"] = found.retry_after
        return HTMLResponse(render_message(lang, "busy"), status_code=429, headers=headers)
    if found is None:
        return HTMLResponse(render_message(lang, "missing"), status_code=404, headers=headers)
    body = render_page(
        lang,
        found,
        tile_url=settings.map_tile_url,
        tile_attribution=attribution_text(settings.map_tile_attribution),
    )
    return HTMLResponse(body, headers=headers)


@router.get("/t/{token}/status", include_in_schema=False)
async def page_status(
    request: Request, token: str, pool: PoolDep, settings: SettingsDep
) -> Response:
    """The page's data: order number, steps, window, ETA, delay, vehicle (see the module)."""
    headers = _headers(settings)
    found = await _status_or_refusal(request, token, pool, settings)
    if isinstance(found, _Refused):
        headers["Retry-After"] = found.retry_after
        return _problem(429, "Too Many Requests", "too many requests; wait and retry", headers)
    if found is None:
        return _problem(404, "Not Found", NOT_FOUND_DETAIL, headers)
    return JSONResponse(found, headers=headers)


def _problem(code: int, title: str, detail: str, headers: dict[str, str]) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": code, "detail": detail}
    return JSONResponse(
        body, status_code=code, headers=headers, media_type="application/problem+json"
    )


class TrackingLinkOut(BaseModel):
    url: str
    token: str
    expires_at: str | None  # set once the order is delivered or cancelled


async def _order(conn: AsyncConnection[Any], number: str) -> tuple[int, OrderRow]:
    cur = await conn.execute(_ORDER_SQL + " WHERE o.number = %s", (number,))
    row = await cur.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {number}")
    return row[0], _order_row(row)


@router.post("/api/v1/orders/{number}/tracking-link", dependencies=[Depends(LINK_MANAGERS)])
async def make_link(
    number: str, pool: PoolDep, user: CurrentUser, settings: SettingsDep
) -> TrackingLinkOut:
    """The order's live tracking link, made now if it has none (revoked links stay revoked)."""
    async with pool.connection() as conn, conn.transaction():
        order_id, order = await _order(conn, number)
        token = await links.link_for(conn, order_id, user.username)
    return TrackingLinkOut(
        url=links.tracking_url(settings.public_url, token),
        token=token,
        expires_at=iso(link_expires_at(order, settings.tracking_link_days)),
    )


@router.delete(
    "/api/v1/orders/{number}/tracking-link",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(LINK_MANAGERS)],
)
async def revoke_link(number: str, pool: PoolDep, user: CurrentUser) -> Response:
    """Revoke the order's live link at once; 404 when it has none."""
    async with pool.connection() as conn, conn.transaction():
        order_id, _ = await _order(conn, number)
        if not await links.revoke(conn, order_id, user.username):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"order {number} has no live tracking link; POST one to make it",
            )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
