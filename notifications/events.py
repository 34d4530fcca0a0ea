"""The customer-facing events, and the order states that raise them.

The outbox triggers in 0006_notifications.sql and 0007_notify_channels.sql hold the same table;
tests check they agree.
"""

from __future__ import annotations

from enum import StrEnum


class NotificationEvent(StrEnum):
    CONFIRMED = "confirmed"
    DISPATCHED = "dispatched"
    ETA_MOVED = "eta_moved"  # the stop's ETA moved past the threshold (payload: eta, ...)
    ARRIVING = "arriving"
    ARRIVED = "arrived"
    DELIVERED = "delivered"
    DELAYED = "delayed"  # a 'delay' exception opened on the order
    EXCEPTION = "exception"  # damage or a short load on the order (payload: reason = kind)


# What an 'exception' notification may say, by the exception's kind (payload "reason"). Other
# kinds stay internal; the trigger only raises these.
CUSTOMER_REASONS: tuple[str, ...] = ("damage", "short_load")


# The order state reached → the event the customer hears about. Other states (picking,
# packed, loaded, ...) are internal and say nothing to the customer.
EVENT_FOR_STATE: dict[str, NotificationEvent] = {
    "created": NotificationEvent.CONFIRMED,
    "in_transit": NotificationEvent.DISPATCHED,
    "arriving": NotificationEvent.ARRIVING,
    "arrived": NotificationEvent.ARRIVED,
    "delivered": NotificationEvent.DELIVERED,
}
