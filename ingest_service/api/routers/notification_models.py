"""What the notification admin routes take and give: channel preferences, the delivery log,
and how an address is shown in it (masked: the log is read by dispatchers, not only admins)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ingest_service.notify.apprise_channel import mask_phone
from ingest_service.notify.channels import CHANNELS
from notifications import LOCALES, NotificationEvent

ChannelName = Literal["email", "sms", "webhook", "chat"]
Locale = Literal["en", "zh-CN"]
assert set(get_args(ChannelName)) == set(CHANNELS) and set(get_args(Locale)) == set(LOCALES)

_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not an IANA time zone name (e.g. Europe/Berlin, Asia/Shanghai, UTC)"
        ) from None
    return name


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_zone)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Channels(_Body):
    email: bool = False
    sms: bool = False
    webhook: bool = False
    chat: bool = False


class QuietHours(_Body):
    start: str = Field(pattern=_CLOCK, examples=["22:00"], description="local time, HH:MM")
    end: str = Field(pattern=_CLOCK, examples=["07:00"], description="may be the next morning")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are equal: for no quiet hours send null")
        return self

    @staticmethod
    def of(start: time | None, end: time | None) -> QuietHours | None:
        if start is None or end is None:
            return None
        return QuietHours(start=f"{start:%H:%M}", end=f"{end:%H:%M}")

    def times(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


class PreferencesIn(_Body):
    """The whole of a customer's notification preferences (PUT replaces them), except
    `chat_url`: leave it out to keep the one set, null to remove it."""

    channels: Channels
    events: dict[ChannelName, list[NotificationEvent]] | None = Field(
        None,
        description="per channel, the events it carries; a channel left out carries every "
        "event; null: every channel carries every event",
    )
    locale: Locale = "en"
    time_zone: TimeZoneName = "UTC"
    quiet_hours: QuietHours | None = None
    webhook_url: str | None = Field(None, max_length=2048)
    webhook_allow_private: bool = Field(
        False, description="let the webhook reach loopback/private addresses (admins only)"
    )
    chat_url: str | None = Field(
        None,
        max_length=2048,
        description="an Apprise URL (tgram://, slack://, ...); write only: it holds secrets",
    )

    def events_json(self) -> dict[str, list[str]] | None:
        if self.events is None:
            return None
        return {ch: list(dict.fromkeys(e.value for e in evs)) for ch, evs in self.events.items()}


class PreferencesOut(BaseModel):
    customer: str
    channels: Channels
    events: dict[str, list[str]] | None
    locale: str
    time_zone: str
    quiet_hours: QuietHours | None
    email: str | None = Field(description="the customer's address, from the customer record")
    phone: str | None
    webhook_url: str | None
    webhook_allow_private: bool
    webhook_secret_set: bool
    chat_url_set: bool = Field(description="whether a chat URL is set; the URL is never shown")


class PreferencesSaved(PreferencesOut):
    webhook_secret: str | None = Field(
        None,
        description="the new signing secret when webhook_url was set or changed: shown once, "
        "store it now (POST .../webhook-secret makes a new one)",
    )


class WebhookSecret(BaseModel):
    customer: str
    webhook_secret: str = Field(description="shown once; the previous secret stops working")


class Delivery(BaseModel):
    attempt: int
    at: datetime
    outcome: str
    error: str | None
    address: str = Field(description="masked: a***@example.com, +*******1234, the host")


class NotificationOut(BaseModel):
    id: int
    order_number: str
    customer: str
    event: str
    channel: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime


class NotificationLogEntry(NotificationOut):
    deliveries: list[Delivery]


class OrderNotifications(BaseModel):
    order_number: str
    notifications: list[NotificationLogEntry]


class NotificationList(BaseModel):
    items: list[NotificationOut]


class Preview(BaseModel):
    subject: str
    text: str
    html: str


def mask_email(address: str) -> str:
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_address(channel: str, address: str) -> str:
    """What the delivery log shows of where a message went."""
    if channel == "email":
        return mask_email(address)
    if channel == "sms":
        return mask_phone(address)
    if channel == "webhook":
        return urlsplit(address).hostname or "?"
    return (urlsplit(address).scheme or "?") + "://…"  # a chat URL is all secret
