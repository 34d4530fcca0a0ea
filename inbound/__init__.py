"""Inbound, the pure part: purchase orders, ASNs and their rules, reminders, receiving
reconciliation (docs/inbound.md). No I/O."""
