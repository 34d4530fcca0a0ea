"""Email over SMTP with the standard library, in a worker thread.

`smtp://host:port` is plain SMTP (a local sink), `smtp+starttls://host:587` upgrades with
STARTTLS, `smtps://host:465` is implicit TLS; `user:password@` (URL-encoded) logs in. TLS
verifies the server's certificate against the system's CAs.
"""

from __future__ import annotations

import asyncio
import html
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal
from urllib.parse import unquote, urlsplit

from ingest_service.notify.channels import Outgoing, PermanentFailure, Target
from notifications import Message

Security = Literal["plain", "starttls", "tls"]
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    security: Security = "plain"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()


def parse_smtp_url(url: str, timeout_s: float = 30.0) -> SmtpConfig:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"SMTP URL scheme must be one of {', '.join(_SCHEMES)}, not {scheme!r}")
    if not parts.hostname:
        raise ValueError("SMTP URL has no host")
    security, default_port = _SCHEMES[scheme]
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or default_port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout_s=timeout_s,
    )


def build_message(
    message: Message, *, sender: str, to: str, message_id: str, date: datetime
) -> EmailMessage:
    """multipart/alternative: text first, HTML preferred. Raises PermanentFailure when an
    address or header cannot be put in a mail at all (e.g. a line break in it)."""
    mail = EmailMessage()
    try:
        mail["From"] = sender
        mail["To"] = to
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(date)
        mail["Message-ID"] = message_id
        mail["Auto-Submitted"] = "auto-generated"
    except (ValueError, TypeError) as e:
        raise PermanentFailure(f"cannot build the message: {e}") from e
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    return mail


class EmailChannel:
    """Sends one rendered message to one address. Raises on failure: PermanentFailure when
    retrying cannot help (the server refused the recipient or the message with a 5xx)."""

    name = "email"

    def __init__(self, config: SmtpConfig, sender: str) -> None:
        self.config = config
        self.sender = sender
        domain = parseaddr(sender)[1].rpartition("@")[2]
        self.domain = domain or "localhost"

    def message_id(self, notification_id: int) -> str:
        # Stable per notification: a resend after a crash can be recognised downstream.
        return f"<notification-{notification_id}.tracklane@{self.domain}>"

    async def send(self, target: Target, out: Outgoing, *, now: datetime) -> None:
        mail = build_message(
            out.message,
            sender=self.sender,
            to=target.address,
            message_id=self.message_id(out.notification_id),
            date=now,
        )
        await asyncio.to_thread(self._send_blocking, mail)

    async def send_text(self, to: str, subject: str, text: str, *, key: str, now: datetime) -> None:
        """A message with no template, e.g. a supplier's ASN reminder; `key` (stable per
        message) makes its Message-ID."""
        message = Message(subject=subject, text=text, html=f"<pre>{html.escape(text)}</pre>")
        mail = build_message(
            message, sender=self.sender, to=to, message_id=f"<{key}.tracklane@{self.domain}>",
            date=now,
        )  # fmt: skip
        await asyncio.to_thread(self._send_blocking, mail)

    def _send_blocking(self, mail: EmailMessage) -> None:
        c = self.config
        smtp: smtplib.SMTP
        if c.security == "tls":
            smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=c.context())
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        with smtp:
            if c.security == "starttls":
                smtp.starttls(context=c.context())
            if c.username:
                smtp.login(c.username, c.password or "")
            try:
                smtp.send_message(mail)
            except smtplib.SMTPRecipientsRefused as e:
                codes = [code for code, _ in e.recipients.values()]
                if codes and all(code >= 500 for code in codes):
                    raise PermanentFailure(f"recipient refused: {e.recipients}") from e
                raise
            except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as e:
                if e.smtp_code >= 500:
                    raise PermanentFailure(f"{e.smtp_code} {e.smtp_error!r}") from e
                raise
