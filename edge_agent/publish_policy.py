"""What the publisher does with each PUBACK reason code: one table, no I/O.

MQTT 5 lets the broker answer a QoS 1 PUBLISH with an error. Some errors can never turn into
a success by sending the same batch again (the gateway is not allowed on that topic: its
credentials or the broker's ACL are wrong); others say "not now" (quota exceeded, the broker
hit an internal problem). Deleting a refused batch would lose events without a trace, and
retrying a permanent refusal forever would block every newer event behind it, so:

- DELIVERED: the rows are deleted from the outbox and counted as published.
- RETRY: the rows go back to the outbox, first in line, and publishing pauses with backoff.
- QUARANTINE: the rows move to the outbox's quarantine table, where they stay (counted in the
  gateway's retained status, logged as an error) until an operator has fixed the cause and
  calls `Outbox.requeue_quarantined()`, or deletes them.

A code not in the table is treated as transient (RETRY): an unknown answer is no proof that
the batch can never be delivered.
"""

from __future__ import annotations

import enum


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    QUARANTINE = "quarantine"


# MQTT 5.0, 3.4.2.1 PUBACK Reason Codes.
PUBACK_VERDICTS: dict[int, tuple[Verdict, str]] = {
    0x00: (Verdict.DELIVERED, "success"),
    0x10: (Verdict.DELIVERED, "no matching subscribers"),
    0x80: (Verdict.RETRY, "unspecified error"),
    0x83: (Verdict.RETRY, "implementation specific error"),
    0x97: (Verdict.RETRY, "quota exceeded"),
    0x87: (Verdict.QUARANTINE, "not authorized; check the gateway's credentials and ACL"),
    0x90: (Verdict.QUARANTINE, "topic name invalid; check the site and gateway names"),
    0x91: (Verdict.RETRY, "packet identifier in use"),
    0x99: (Verdict.QUARANTINE, "payload format invalid"),
}


def puback_verdict(code: int) -> tuple[Verdict, str]:
    """The verdict and a readable name for a PUBACK reason code."""
    if code in PUBACK_VERDICTS:
        return PUBACK_VERDICTS[code]
    if code < 0x80:
        return Verdict.DELIVERED, f"success (0x{code:02X})"
    return Verdict.RETRY, f"error 0x{code:02X}"
