"""What every notification channel is given and how it answers (docs/notifications.md).

The sender claims an outbox row, renders it and hands each channel an `Outgoing` and the
customer's `Target` on that channel. `send` returns when the channel took the message and
raises otherwise: `PermanentFailure` when retrying cannot help (the row goes dead at once),
any other exception for a failure worth retrying with backoff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from notifications import Message

CHANNELS = ("email", "sms", "webhook", "chat")


class PermanentFailure(Exception):
    """The receiver (or the address) says this message will never go: do not retry."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    notification_id: int
    event: str  # notifications.NotificationEvent value
    locale: str
    payload: Mapping[str, Any]  # frozen when the event happened (ISO 8601 UTC strings)
    message: Message  # rendered in the customer's locale and time zone
    tracking_url: str | None


@dataclass(frozen=True, slots=True)
class Target:
    """Where this customer gets this channel: an email address, a phone number, a webhook
    URL (with its signing secret and whether an admin let it reach private addresses), or an
    Apprise chat URL."""

    address: str
    secret: str | None = field(default=None, repr=False)
    allow_private: bool = False


class Channel(Protocol):
    name: str  # one of CHANNELS

    async def send(self, target: Target, out: Outgoing, *, now: datetime) -> None: ...
