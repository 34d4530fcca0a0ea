"""ASN reminders: when a supplier is reminded of a PO, and what the mail says. Pure.

A PO that is still open (sent or acknowledged) and has no submitted or received ASN gets one
reminder, on or after its delivery date minus the supplier's `reminder_days` (5, 7 or 10),
up to and including the delivery date. Never before, never once an ASN is submitted, never
twice (the adapter records each in `supplier_reminders`). After the delivery date the PO is
late, which is the buyer's business, not a reminder's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

REMINDER_DAYS = (5, 7, 10)


def due_on(delivery_date: date, reminder_days: int) -> date:
    """The first day the reminder may go out."""
    if reminder_days not in REMINDER_DAYS:
        raise ValueError(f"reminder_days {reminder_days} must be one of {REMINDER_DAYS}")
    return delivery_date - timedelta(days=reminder_days)


@dataclass(frozen=True, slots=True)
class PoWaiting:
    """What the reminder rule needs to know about one PO."""

    number: str
    delivery_date: date
    reminder_days: int
    open: bool  # sent or acknowledged
    asn_submitted: bool  # a submitted or received ASN exists
    reminded: bool  # a reminder was already sent


def reminder_due(po: PoWaiting, today: date) -> bool:
    """Whether to send the PO's reminder today."""
    if not po.open or po.asn_submitted or po.reminded:
        return False
    return due_on(po.delivery_date, po.reminder_days) <= today <= po.delivery_date


@dataclass(frozen=True, slots=True)
class ReminderMail:
    subject: str
    text: str


def reminder_mail(
    *,
    po_number: str,
    supplier_name: str,
    delivery_date: date,
    site: str,
    today: date,
    acknowledged: bool,
) -> ReminderMail:
    """The reminder's subject and plain text."""
    days = (delivery_date - today).days
    when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    steps = (
        "Please create the Advance Shipping Notice (ASN) for it and submit it."
        if acknowledged
        else "Please acknowledge the order, then create and submit its Advance Shipping"
        " Notice (ASN)."
    )
    text = (
        f"Dear {supplier_name},\n\n"
        f"Purchase order {po_number} is due for delivery to {site} on"
        f" {delivery_date:%d %b %Y} ({when}), and no ASN has been submitted for it yet.\n"
        f"{steps}\n\n"
        "If the order has already shipped, the ASN lets us receive it quickly at the door.\n"
        "This is the only reminder for this order.\n"
    )
    return ReminderMail(f"ASN needed: purchase order {po_number}, delivery {when}", text)
