"""The customer-facing events, and the order states that raise them.

The outbox triggers in 0006_notifications.sql hold the same table; tests check they agree.
"""

from __future__ import annotations

from enum import StrEnum


class NotificationEvent(StrEnum):
    CONFIRMED = "confirmed"
    DISPATCHED = "dispatched"
    ARRIVING = "arriving"
    ARRIVED = "arrived"
    DELIVERED = "delivered"
    DELAYED = "delayed"  # a 'delay' exception opened on the order


# The order state reached → the event the customer hears about. Other states (picking,
# packed, loaded, ...) are internal and say nothing to the customer.
EVENT_FOR_STATE: dict[str, NotificationEvent] = {
    "created": NotificationEvent.CONFIRMED,
    "in_transit": NotificationEvent.DISPATCHED,
    "arriving": NotificationEvent.ARRIVING,
    "arrived": NotificationEvent.ARRIVED,
    "delivered": NotificationEvent.DELIVERED,
}
