"""EPCIS 2.0 events (JSON-LD dicts) from plain rows: scans, loads, receipts, milestones.

Each builder takes one frozen row and returns one event; `document` wraps events in an
EPCISDocument. Pure: the rows are read by ingest_service/epcis, and nothing here does I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .identifiers import (
    Locations,
    geo_uri,
    gtin_class_uri,
    read_point_uri,
    site_uri,
    sscc_uri,
    tag_uri,
    trip_uri,
)
from .vocabulary import (
    CONTEXT,
    DESPATCH_ADVICE,
    MILESTONE_STEPS,
    ORDER_TYPES,
    PURCHASE_ORDER,
    SCHEMA_VERSION,
    STAGE_STEPS,
    UNKNOWN_STAGE,
    Step,
)

Event = dict[str, Any]
# Milestones have no scan id of their own: a name-based UUID of the order event is stable.
MILESTONE_NAMESPACE = uuid.UUID("6f1d3c4e-5a0b-4b8e-9a57-2f1e8c0d7b21")


@dataclass(frozen=True, slots=True)
class Package:
    sscc: str
    epc: str | None = None  # the tag's hex, when the package is tagged


@dataclass(frozen=True, slots=True)
class OrderRef:
    number: str
    type: str = "sales"


@dataclass(frozen=True, slots=True)
class ScanRow:
    """A scan matched to a package, an order label or a product (scan_outcomes)."""

    event_id: uuid.UUID
    time: datetime
    recorded_at: datetime | None
    site: str
    door: str | None
    station: str | None
    stage: str | None
    code: str
    code_kind: str  # "barcode" or "epc"
    packages: Sequence[Package] = ()  # the package seen, or every package of a scanned order
    gtin: str | None = None  # a product scan: its GTIN-14
    order: OrderRef | None = None
    loaded_trip: str | None = None  # a dispatch scan that loaded its package onto this trip


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """A receiving scan counted against an ASN (asn_receipts)."""

    event_id: uuid.UUID
    time: datetime
    site: str
    door: str | None
    asn: str
    po: str
    quantity: int
    sscc: str | None = None
    sscc_epc: str | None = None
    gtin: str | None = None


@dataclass(frozen=True, slots=True)
class MilestoneRow:
    """An order state change from a trip or geofence (order_events)."""

    id: int
    time: datetime
    order: OrderRef
    state: str  # a key of MILESTONE_STEPS
    site: str
    packages: Sequence[Package]
    lat: float | None = None
    lon: float | None = None


def _times(at: datetime, recorded: datetime | None = None) -> Event:
    """eventTime in UTC with its offset; stored times carry no zone of their own."""
    times: Event = {
        "eventTime": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": "+00:00",
    }
    if recorded is not None:
        times["recordTime"] = recorded.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return times


def _what(step: Step) -> Event:
    out: Event = {"bizStep": step.biz_step}
    if step.disposition:
        out["disposition"] = step.disposition
    return out


def _transaction(type_: str, kind: str, number: str, where: Locations) -> dict[str, str]:
    # CBV's form is urn:epcglobal:cbv:bt:<GLN of the issuer>:<number>; without our GLN (or
    # for a supplier's document) a private URN names it.
    if where.party_gln and kind in ("so", "po"):
        ident = f"urn:epcglobal:cbv:bt:{where.party_gln}:{quote(number)}"
    else:
        ident = f"urn:tracklane:{kind}:{quote(number)}"
    return {"type": type_, "bizTransaction": ident}


def order_transaction(order: OrderRef, where: Locations) -> dict[str, str]:
    return _transaction(
        ORDER_TYPES.get(order.type, ORDER_TYPES["sales"]), "so", order.number, where
    )


def _package_uris(packages: Iterable[Package], where: Locations) -> list[str]:
    return list(dict.fromkeys(sscc_uri(p.sscc, where, p.epc) for p in packages))


def scan_event(row: ScanRow, where: Locations) -> Event:
    """An ObjectEvent (OBSERVE) of what the scan saw; an AggregationEvent (ADD) when a
    dispatch scan loaded its package onto a trip."""
    step = STAGE_STEPS.get(row.stage or "", UNKNOWN_STAGE)
    event: Event = {"type": "ObjectEvent", "eventID": f"urn:uuid:{row.event_id}"}
    event |= _times(row.time, row.recorded_at)
    tag = tag_uri(row.code) if row.code_kind == "epc" else None
    if row.loaded_trip and row.packages:
        children = [tag] if tag and len(row.packages) == 1 else _package_uris(row.packages, where)
        event |= {"type": "AggregationEvent", "parentID": trip_uri(row.loaded_trip)}
        event |= {"childEPCs": children, "action": "ADD"}
    elif tag:
        event |= {"epcList": [tag], "action": "OBSERVE"}  # the tag read is the identity
    elif row.packages:
        event |= {"epcList": _package_uris(row.packages, where), "action": "OBSERVE"}
    elif row.gtin:
        quantity = {"epcClass": gtin_class_uri(row.gtin, where), "quantity": 1}
        event |= {"quantityList": [quantity], "action": "OBSERVE"}
    else:
        event |= {"epcList": [], "action": "OBSERVE"}
    event |= _what(step)
    event["readPoint"] = {"id": read_point_uri(row.site, row.door, row.station, where)}
    event["bizLocation"] = {"id": site_uri(row.site, where)}
    if row.order is not None:
        event["bizTransactionList"] = [order_transaction(row.order, where)]
    return event


def receipt_event(row: ReceiptRow, where: Locations) -> Event | None:
    """Receiving against an ASN: an AggregationEvent (OBSERVE) of the case or pallet SSCC with
    the product quantity it holds; an ObjectEvent of the SSCC, or of the product's quantity,
    when only one is known; None when neither is (nothing to name)."""
    event: Event = {"eventID": f"urn:uuid:{row.event_id}"} | _times(row.time)
    parent = sscc_uri(row.sscc, where, row.sscc_epc) if row.sscc else None
    content = (
        [{"epcClass": gtin_class_uri(row.gtin, where), "quantity": row.quantity}]
        if row.gtin
        else []
    )
    if parent and content:
        event |= {"type": "AggregationEvent", "parentID": parent, "childQuantityList": content}
    elif parent:
        event |= {"type": "ObjectEvent", "epcList": [parent]}
    elif content:
        event |= {"type": "ObjectEvent", "quantityList": content}
    else:
        return None
    event["action"] = "OBSERVE"
    event |= _what(STAGE_STEPS["receive"])
    event["readPoint"] = {"id": read_point_uri(row.site, row.door, None, where)}
    event["bizLocation"] = {"id": site_uri(row.site, where)}
    event["bizTransactionList"] = [
        _transaction(PURCHASE_ORDER, "po", row.po, where),
        _transaction(DESPATCH_ADVICE, "asn", row.asn, where),
    ]
    return event


def milestone_event(row: MilestoneRow, where: Locations) -> Event:
    """An ObjectEvent (OBSERVE) of the order's packages: departing, arriving or accepted."""
    ident = uuid.uuid5(MILESTONE_NAMESPACE, f"{row.order.number}:{row.state}:{row.id}")
    event: Event = {"type": "ObjectEvent", "eventID": f"urn:uuid:{ident}"} | _times(row.time)
    event |= {"epcList": _package_uris(row.packages, where), "action": "OBSERVE"}
    event |= _what(MILESTONE_STEPS[row.state])
    if row.state == "in_transit":
        event["readPoint"] = {"id": site_uri(row.site, where)}
    elif row.lat is not None and row.lon is not None:
        event["readPoint"] = {"id": geo_uri(row.lat, row.lon)}
    event["bizTransactionList"] = [order_transaction(row.order, where)]
    return event


def document(events: Sequence[Event], created: datetime) -> Event:
    """The EPCISDocument (EPCIS 2.0, JSON-LD) holding `events` in the given order."""
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": _times(created)["eventTime"],
        "epcisBody": {"eventList": list(events)},
    }
