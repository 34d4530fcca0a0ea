"""Customer notifications, the pure part: events, retry schedule, quiet hours, templates.

Nothing here does I/O beyond reading its own templates: the sender
(`ingest_service/notify`) claims outbox rows from PostgreSQL, asks this package what to say
and when, and talks SMTP. See docs/notifications.md.
"""

from notifications.events import EVENT_FOR_STATE, NotificationEvent
from notifications.quiet import QuietHours, next_allowed
from notifications.retry import RetryPolicy, retry_delay
from notifications.templates import LOCALES, Message, render, template_context

__all__ = [
    "EVENT_FOR_STATE",
    "LOCALES",
    "Message",
    "NotificationEvent",
    "QuietHours",
    "RetryPolicy",
    "next_allowed",
    "render",
    "retry_delay",
    "template_context",
]
