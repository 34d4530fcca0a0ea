"""The customer's tracking page at /t/{token}: its Jinja2 templates, words and static files.

`render_page` writes the page from the status JSON (notifications/tracking_view.py) in en or
zh-CN; `static/track.js` refreshes it from /t/{token}/status. `render_message` is the page
for a link that does not work (one body for unknown, revoked and expired) and for "too many
requests". The routes are in ingest_service/api/routers/tracking_page.py; the static files
are served at /t/assets/{name} (only the names in STATIC_FILES).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PATH = "/t/assets"
STATIC_FILES = {
    "track.js": "text/javascript; charset=utf-8",
    "track.css": "text/css; charset=utf-8",
}
ALL_STEPS = ("confirmed", "dispatched", "arriving", "arrived", "delivered", "cancelled")

_env = Environment(
    loader=PackageLoader("dashboard.track", "templates"),
    autoescape=True,  # every value is data, never markup
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "title": "Track your order",
        "order": "Order",
        "steps": {
            "confirmed": "Order confirmed",
            "dispatched": "On its way",
            "arriving": "Arriving soon",
            "arrived": "Arrived",
            "delivered": "Delivered",
            "cancelled": "Cancelled",
        },
        "eta": "Estimated arrival",
        "window": "Delivery window",
        "no_window": "We will tell you when it is on its way.",
        "delayed": "Your delivery is running late. We are sorry for the wait; the times "
        "on this page follow the latest news.",
        "vehicle": "Your delivery vehicle",
        "vehicle_at": "Position at",
        "timeline": "Progress",
        "updated": "Updated",
        "expires": "This link works until",
        "missing_title": "Link not found",
        "missing_text": "This tracking link does not exist or no longer works. "
        "Ask the sender for a new one.",
        "busy_title": "Too many requests",
        "busy_text": "Please wait a minute and try again.",
    },
    "zh-CN": {
        "title": "订单跟踪",
        "order": "订单",
        "steps": {
            "confirmed": "订单已确认",
            "dispatched": "运输中",
            "arriving": "即将送达",
            "arrived": "已到达",
            "delivered": "已送达",
            "cancelled": "已取消",
        },
        "eta": "预计到达时间",
        "window": "配送时间",
        "no_window": "发货后我们会通知您。",
        "delayed": "您的配送有所延误，很抱歉让您久等。本页时间会随最新情况更新。",  # noqa: RUF001
        "vehicle": "配送车辆",
        "vehicle_at": "位置更新于",
        "timeline": "进度",
        "updated": "更新于",
        "expires": "此链接有效期至",
        "missing_title": "链接无效",
        "missing_text": "此跟踪链接不存在或已失效。请联系发件方获取新链接。",
        "busy_title": "请求过多",
        "busy_text": "请稍候一分钟再试。",
    },
}


def _utc_text(value: str | None) -> str:
    """What the page shows before its script formats times in the reader's zone."""
    return f"{value[:10]} {value[11:16]} UTC" if value else ""


_env.filters["utc_text"] = _utc_text


def render_page(lang: str, status: dict[str, Any], *, tile_url: str, tile_attribution: str) -> str:
    """The tracking page for `status` (the /status JSON) in `lang` (en or zh-CN)."""
    steps = [entry["step"] for entry in status["timeline"]]
    return _env.get_template("page.html.j2").render(
        lang=lang,
        t=TEXT[lang],
        status=status,
        reached={entry["step"]: entry["at"] for entry in status["timeline"]},
        current=steps.index(status["state"]) if status["state"] in steps else 0,
        steps=steps,
        all_steps=ALL_STEPS,
        tile_url=tile_url,
        tile_attribution=tile_attribution,
        assets=ASSETS_PATH,
    )


def render_message(lang: str, kind: str) -> str:
    """The page for a link that does not work (`missing`) or a client that must wait (`busy`)."""
    t = TEXT[lang]
    return _env.get_template("message.html.j2").render(
        lang=lang, t=t, heading=t[f"{kind}_title"], text=t[f"{kind}_text"], assets=ASSETS_PATH
    )
