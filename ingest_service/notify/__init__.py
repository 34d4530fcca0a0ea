"""The notification sender: claims due outbox rows, renders them and sends them by email.

See docs/notifications.md. `run_once` does one pass; `run_forever` loops it.
"""

from ingest_service.notify.mail import EmailChannel, PermanentFailure, SmtpConfig, parse_smtp_url
from ingest_service.notify.sender import PassResult, run_forever, run_once

__all__ = [
    "EmailChannel",
    "PassResult",
    "PermanentFailure",
    "SmtpConfig",
    "parse_smtp_url",
    "run_forever",
    "run_once",
]
