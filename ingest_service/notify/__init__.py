"""The notification sender: claims due outbox rows, renders them and sends them on the
customer's channels (email, SMS, webhook, chat). See docs/notifications.md. `run_once` does
one pass; `run_forever` loops it.
"""

from ingest_service.notify.channels import CHANNELS, Channel, Outgoing, PermanentFailure, Target
from ingest_service.notify.mail import EmailChannel, SmtpConfig, parse_smtp_url
from ingest_service.notify.sender import PassResult, run_forever, run_once

__all__ = [
    "CHANNELS",
    "Channel",
    "EmailChannel",
    "Outgoing",
    "PassResult",
    "PermanentFailure",
    "SmtpConfig",
    "Target",
    "parse_smtp_url",
    "run_forever",
    "run_once",
]
