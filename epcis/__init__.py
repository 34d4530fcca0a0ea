"""GS1 EPCIS 2.0 events (JSON-LD) from scans and order milestones, the pure part
(docs/epcis.md): identifiers, the CBV mapping, and builders from plain rows. No I/O."""

from .builders import (
    MilestoneRow,
    OrderRef,
    Package,
    ReceiptRow,
    ScanRow,
    document,
    milestone_event,
    receipt_event,
    scan_event,
)
from .identifiers import Locations, gtin_class_uri, read_point_uri, site_uri, sscc_uri

__all__ = [
    "Locations",
    "MilestoneRow",
    "OrderRef",
    "Package",
    "ReceiptRow",
    "ScanRow",
    "document",
    "gtin_class_uri",
    "milestone_event",
    "read_point_uri",
    "receipt_event",
    "scan_event",
    "site_uri",
    "sscc_uri",
]
