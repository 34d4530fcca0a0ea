"""Message templates: Jinja2, one subject, text and HTML template per event and locale.

`notifications/templates/{locale}/{event}.subject.j2 | .txt.j2 | .html.j2`. HTML is
autoescaped (a customer's name is data, never markup); subjects are folded to one line so
nothing in the data can add a mail header. An unknown locale falls back to `en`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notifications.events import CUSTOMER_REASONS, NotificationEvent

LOCALES = ("en", "zh-CN")
DEFAULT_LOCALE = "en"

_env = Environment(
    loader=PackageLoader("notifications", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)

_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZH_WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    html: str


def resolve_locale(locale: str | None) -> str:
    """The locale we have templates for: exact, else by language (zh-* → zh-CN), else en."""
    if locale in LOCALES:
        return locale
    if locale:
        language = locale.replace("_", "-").split("-")[0].lower()
        for known in LOCALES:
            if known.split("-")[0].lower() == language:
                return known
    return DEFAULT_LOCALE


def format_time(value: datetime, locale: str) -> str:
    """A local time as a person reads it: "Sun 22 Nov, 14:30" or "11月22日 周日 14:30"."""
    if resolve_locale(locale) == "zh-CN":
        return f"{value.month}月{value.day}日 {_ZH_WEEKDAYS[value.weekday()]} {value:%H:%M}"
    return (
        f"{_EN_WEEKDAYS[value.weekday()]} {value.day} {_EN_MONTHS[value.month - 1]}, {value:%H:%M}"
    )


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def template_context(
    payload: Mapping[str, Any], locale: str, zone: tzinfo, tracking_url: str | None = None
) -> dict[str, Any]:
    """The outbox row's payload, with its times in the customer's zone and words."""

    def local(key: str) -> str | None:
        parsed = _parse(payload.get(key))
        return format_time(parsed.astimezone(zone), locale) if parsed else None

    reason = payload.get("reason")
    return {
        "order_number": str(payload.get("order_number", "")),
        "customer_name": str(payload.get("customer_name", "")),
        "at": local("at"),
        "window_start": local("window_start"),
        "window_end": local("window_end"),
        "eta": local("eta"),
        "eta_earliest": local("eta_earliest"),
        "eta_latest": local("eta_latest"),
        # Only the kinds we have customer wording for; anything else gets the general text.
        "reason": reason if reason in CUSTOMER_REASONS else None,
        "tracking_url": tracking_url,
    }


_SAMPLE_BASE: dict[str, str] = {
    "order_number": "SO-1001",
    "customer_name": "Ann Lee",
    "at": "2026-11-22T06:30:00Z",
    "window_start": "2026-11-22T08:00:00Z",
    "window_end": "2026-11-22T10:00:00Z",
}
_SAMPLE_EXTRA: dict[NotificationEvent, dict[str, str]] = {
    NotificationEvent.ETA_MOVED: {
        "eta": "2026-11-22T09:40:00Z",
        "eta_earliest": "2026-11-22T09:25:00Z",
        "eta_latest": "2026-11-22T10:05:00Z",
    },
    NotificationEvent.EXCEPTION: {"reason": "damage"},
}


def sample_payload(event: NotificationEvent | str, *, reason: str | None = None) -> dict[str, str]:
    """A payload shaped like the outbox row's for `event`, for previews and tests.

    `reason` picks the exception kind shown (damage, short_load); other events ignore it.
    """
    event = NotificationEvent(event)
    payload = {**_SAMPLE_BASE, **_SAMPLE_EXTRA.get(event, {})}
    if event is NotificationEvent.EXCEPTION and reason is not None:
        payload["reason"] = reason
    return payload


def render(
    event: NotificationEvent | str, locale: str | None, context: Mapping[str, Any]
) -> Message:
    """The message for this event in this locale (or `en`)."""
    event = NotificationEvent(event)
    folder = resolve_locale(locale)
    values = {
        "order_number": "",
        "customer_name": "",
        "at": None,
        "window_start": None,
        "window_end": None,
        "eta": None,
        "eta_earliest": None,
        "eta_latest": None,
        "reason": None,
        "tracking_url": None,
        **context,
    }

    def one(kind: str) -> str:
        return _env.get_template(f"{folder}/{event.value}.{kind}.j2").render(values)

    subject = " ".join(one("subject").split())
    return Message(subject=subject, text=one("txt"), html=one("html"))
