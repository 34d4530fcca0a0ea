"""SMS and chat apps through Apprise (https://github.com/caronc/apprise), in a worker thread.

`SmsChannel` sends a short text (subject and tracking link) through the operator's SMS
provider: `TRACKLANE_SMS_URL` is an Apprise URL with `{phone}` where the customer's number
goes (e.g. `twilio://SID:TOKEN@+15550001111/{phone}`). `ChatChannel` sends the plain text
message to the customer's own Apprise URL (`tgram://`, `slack://`, ...), which an admin set.

Apprise answers with a bool. The reason for a failure comes from the log of that one call
(`AppriseResult.logs()`, not the process-wide `LogCapture`, so two sends in two threads never
swap reasons); URLs hold credentials, so no error ever carries one.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from urllib.parse import quote, urlsplit

import apprise

from ingest_service.notify.channels import Outgoing, PermanentFailure, Target

SMS_MAX_CHARS = 300  # two concatenated SMS segments, about; providers split longer texts
DEFAULT_TIMEOUT_S = 30.0
_PHONE_NOISE = re.compile(r"[\s().\-]")
_PHONE = re.compile(r"^\+?[0-9]{5,15}$")


class AppriseSendError(RuntimeError):
    """The service did not take the message this time (worth retrying with backoff)."""


def normalize_phone(raw: str) -> str:
    """`+49 (151) 123-456 78` → `+4915112345678`; PermanentFailure when it is not a number."""
    phone = _PHONE_NOISE.sub("", raw)
    if not _PHONE.match(phone):
        raise PermanentFailure(
            f"sms: phone number {mask_phone(raw)} is not a number (digits, an optional leading"
            " +); correct the customer's phone"
        )
    return phone


def mask_phone(phone: str) -> str:
    """All but the last four digits hidden: `+*******1234`."""
    digits = re.sub(r"\D", "", phone)
    prefix = "+" if phone.strip().startswith("+") else ""
    return prefix + "*" * max(len(digits) - 4, 0) + digits[-4:]


def sms_text(out: Outgoing, limit: int = SMS_MAX_CHARS) -> str:
    """The subject and the tracking link, within `limit` characters (the link kept whole)."""
    subject = out.message.subject
    link = out.tracking_url or ""
    room = limit - (len(link) + 1 if link else 0)
    if len(subject) > room:
        subject = subject[: max(room - 1, 0)].rstrip() + "…"
    return f"{subject} {link}" if link else subject


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower() or "(none)"


def unusable(url: str) -> str | None:
    """Why Apprise cannot use `url`, or None when it can. Never quotes the URL."""
    if apprise.Apprise().add(url):
        return None
    scheme = _scheme(url)
    if scheme not in apprise.NotificationManager():
        return f"Apprise has no service called {scheme}://"
    return f"the {scheme}:// URL is malformed or misses a part (a token or target)"


class _AppriseSender:
    """What both channels share: one Apprise object per message, the call in a thread."""

    name: str
    fix: str  # what to change when the URL cannot be used

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    async def _notify(self, url: str, *, body: str, title: str, redact: tuple[str, ...]) -> None:
        await asyncio.to_thread(self._notify_blocking, url, body, title, redact)

    def _notify_blocking(self, url: str, body: str, title: str, redact: tuple[str, ...]) -> None:
        sender = apprise.Apprise()
        if not sender.add(url):
            raise PermanentFailure(f"{self.name}: {unusable(url)}; {self.fix}")
        result = sender.notify(
            body=body,
            title=title,
            body_format=apprise.NotifyFormat.TEXT,
            timeout=self.timeout_s,
        )
        if not result:
            reasons = [entry.message for entry in result.logs()] or [repr(result)]
            reason = "; ".join(dict.fromkeys(reasons))  # once each, in order
            for secret in (url, *redact):
                reason = reason.replace(secret, "…")
            raise AppriseSendError(f"{self.name} via {_scheme(url)}:// failed: {reason}")


class SmsChannel(_AppriseSender):
    """SMS through the operator's provider; the target's address is the customer's phone."""

    name = "sms"
    fix = "correct TRACKLANE_SMS_URL (an Apprise URL with {phone} where the number goes)"

    def __init__(self, url_template: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if "{phone}" not in url_template:
            raise ValueError(
                "TRACKLANE_SMS_URL needs {phone} where the customer's number goes, e.g. "
                "twilio://SID:TOKEN@+15550001111/{phone}"
            )
        super().__init__(timeout_s)
        self._url_template = url_template

    def __repr__(self) -> str:  # the template holds the provider's credentials
        return f"SmsChannel({_scheme(self._url_template)}://…)"

    async def send(self, target: Target, out: Outgoing, *, now: datetime) -> None:
        phone = normalize_phone(target.address)
        # Percent-encoded: a "+" in a query string would otherwise arrive as a space.
        url = self._url_template.replace("{phone}", quote(phone, safe=""))
        await self._notify(url, body=sms_text(out), title="", redact=(phone, phone.lstrip("+")))


class ChatChannel(_AppriseSender):
    """A chat app; the target's address is the customer's Apprise URL."""

    name = "chat"
    fix = "an admin can set a new chat_url with PUT /api/v1/customers/{ref}/notifications"

    async def send(self, target: Target, out: Outgoing, *, now: datetime) -> None:
        if not target.address:
            raise PermanentFailure(f"chat: the customer has no chat URL; {self.fix}")
        await self._notify(
            target.address, body=out.message.text, title=out.message.subject, redact=()
        )
