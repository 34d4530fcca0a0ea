"""The dispatcher's dashboard and the dock screens: static pages the API serves at `/`.

`mount_dashboard` adds them to an app: `/vendor/leaflet/` and `/vendor/markercluster/` from
the xstatic wheels (never copied into the repository), `GET /dashboard/config.json` with the
map's tile URL and attribution, and `dashboard/static/` at `/`. Everything served from here
carries a Content-Security-Policy without inline script and `nosniff`. See docs/live-map.md.

config.json is served by the dashboard's mount, not by an API route: like the pages it holds
no data, only the operator's tile settings, so the API's route table (and PUBLIC_ROUTES,
checked before the dashboard is mounted) stay about the API alone.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
CONFIG_PATH = "/dashboard/config.json"

__all__ = ["CONFIG_PATH", "STATIC_DIR", "content_security_policy", "mount_dashboard"]


def mount_dashboard(app: Any, *, tile_url: str, tile_attribution: str) -> None:
    """Serve the dashboard at `/` (a mount: it must come after every API route)."""
    import xstatic.pkg.leaflet as leaflet
    import xstatic.pkg.leaflet_markercluster as markercluster

    headers = security_headers(tile_url)
    config = {"tile_url": tile_url, "tile_attribution": attribution_text(tile_attribution)}

    async def dashboard_config(request: Any) -> JSONResponse:
        return JSONResponse(config, headers={"Cache-Control": "no-cache"})

    for prefix, directory in (
        ("/vendor/leaflet", leaflet.BASE_DIR),
        ("/vendor/markercluster", markercluster.BASE_DIR),
    ):
        app.mount(prefix, _WithHeaders(StaticFiles(directory=directory), headers))
    site = Router(
        routes=[
            Route(CONFIG_PATH, dashboard_config, methods=["GET"]),
            Mount("/", app=StaticFiles(directory=STATIC_DIR, html=True)),
        ]
    )
    app.mount("/", _WithHeaders(site, headers), name="dashboard")


def content_security_policy(tile_url: str) -> str:
    """No inline script; images from here, data: URLs and the tile server only."""
    images = ["'self'", "data:"]
    if source := _tile_source(tile_url):
        images.append(source)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            "connect-src 'self'",  # CSP3: same-origin ws: and wss: too
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(tile_url: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", content_security_policy(tile_url).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        # Tile servers (OpenStreetMap's policy) want to see which site asks; no more than that.
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
    ]


def attribution_text(attribution: str) -> str:
    """The attribution as plain text: the page shows it with textContent, never as HTML."""
    return html.unescape(re.sub(r"<[^>]*>", "", attribution)).strip()


def _tile_source(tile_url: str) -> str | None:
    """The CSP source for a tile URL template; `{s}.tile.example` becomes `*.tile.example`."""
    parts = urlsplit(tile_url.strip())
    if not parts.scheme or not parts.netloc:
        return None  # empty, or a path on this server ('self' covers it)
    host = parts.netloc.rsplit("@", 1)[-1]
    labels = host.split(".")
    if "{" in labels[0]:
        labels[0] = "*"
    host = ".".join(labels)
    if "{" in host or "}" in host or not re.fullmatch(r"[A-Za-z0-9.*:\[\]-]+", host):
        return f"{parts.scheme}:"  # a placeholder we cannot express: the scheme alone
    return f"{parts.scheme}://{host}"


class _WithHeaders:
    """Adds the security headers to every HTTP response of the wrapped app; refuses
    WebSockets (a path the API does not serve, such as /api/v1/live before it exists)."""

    def __init__(self, app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
