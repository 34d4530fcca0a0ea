"""A local SMTP sink that keeps what it receives: the demo's customers' inbox.

`tracklane demo` points the sender at it (smtp://127.0.0.1:<port>), so the demo sends real
mail over real SMTP and nothing leaves the machine; the dashboard's mail page
(`/mail.html`, `GET /api/v1/demo/mailbox`) lists what each customer received. It keeps the
newest `limit` messages in memory.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

_NOTIFICATION_ID = re.compile(r"<notification-(\d+)\.tracklane@")
_TRACKING_TOKEN = re.compile(r"/t/([A-Za-z0-9_-]{22,64})\b")


@dataclass(frozen=True, slots=True)
class Received:
    at: datetime
    to: tuple[str, ...]
    subject: str
    text: str
    notification_id: int | None  # from the Message-ID the sender sets
    tracking_token: str | None  # from the tracking link in the text


class Mailbox:
    def __init__(self, limit: int = 2000) -> None:
        self._messages: deque[Received] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self.port: int | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(mail, EmailMessage)
        body = mail.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        nid = _NOTIFICATION_ID.search(str(mail.get("Message-ID", "")))
        token = _TRACKING_TOKEN.search(text)
        received = Received(
            at=datetime.now(UTC),
            to=tuple(envelope.rcpt_tos),
            subject=str(mail.get("Subject", "")),
            text=text,
            notification_id=int(nid.group(1)) if nid else None,
            tracking_token=token.group(1) if token else None,
        )
        with self._lock:
            self._messages.append(received)
        return "250 kept"

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def start(self, port: int, host: str = "127.0.0.1") -> str:
        """Listen and return the smtp:// URL to send to (aiosmtpd needs a real port number)."""
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
        self._controller = Controller(self, hostname=host, port=port)
        self._controller.start()
        self.port = self._controller.port
        return f"smtp://{host}:{self.port}"

    def close(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
