"""Receiving against ASNs: assign an ASN to an inbound door, follow what its scans counted,
close it (short lines open exceptions), read the receipt. The queries are
`ingest_service/inbound/receipts.py`'s; scans are counted by ingest
(`ingest_service/inbound/receiving.py`); the rules are `inbound.receiving`'s."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from inbound.receiving import fully_received, line_status
from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.dispatch.errors import NotFound, as_http
from ingest_service.inbound import receipts

router = APIRouter(tags=["receiving"])
DOCK = requires(Role.DISPATCHER, Role.DOCK)
MANAGERS = requires(Role.DISPATCHER)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AsnAssign(_Out):
    asn: str | None  # the ASN's number; null frees the door


class DoorAsnOut(_Out):
    site: str
    door: str
    asn: str | None
    assigned_by: str | None
    assigned_at: datetime | None


class ReceivingLine(_Out):
    po_line_no: int
    sku: str
    ordered: int
    shipped: int
    received: int
    over: int
    short: int


class UnexpectedItem(_Out):
    event_id: UUID
    at: datetime
    door: str | None
    code: str | None
    sku: str | None
    sscc: str | None


class ReceivingOut(_Out):
    asn: str
    status: str
    fully_received: bool
    doors: list[str]  # "site/door" receiving it now
    lines: list[ReceivingLine]
    unexpected: list[UnexpectedItem]
    receipt: str | None


class ReceiptOut(_Out):
    number: str
    asn: str
    status: str
    lines: list[dict[str, Any]]
    completed_at: datetime
    completed_by: str


@router.put("/docks/{site}/{door}/asn", dependencies=[Depends(DOCK)])
async def assign_asn(
    site: str, door: str, body: AsnAssign, pool: PoolDep, user: CurrentUser
) -> DoorAsnOut:
    """Receive a submitted ASN at this door (receive scans here are counted against it), or
    free the door with `asn: null`. 409 if the ASN is not submitted or the door loads a trip."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            row = await receipts.assign_door(conn, site, door, body.asn, user.username)
    return DoorAsnOut(asn=body.asn, **row)


@router.get("/asns/{number}/receiving", dependencies=[Depends(DOCK)])
async def receiving(number: str, pool: PoolDep) -> ReceivingOut:
    """Per line what was ordered, shipped and received (over and short), the items on no
    line of the ASN, and whether it is fully received."""
    async with pool.connection() as conn:
        with as_http():
            asn = await receipts.find_asn(conn, number)
        built, tally = await receipts.counted(conn, asn)
        unexpected = await receipts.unexpected_items(conn, asn["id"])
        doors = await receipts.receiving_doors(conn, asn["id"])
        receipt = await receipts.read_receipt(conn, asn_id=asn["id"])
    return ReceivingOut(
        asn=number, status=asn["status"], fully_received=fully_received(built, tally),
        doors=doors, lines=[ReceivingLine(**s.as_json()) for s in line_status(built, tally)],
        unexpected=[UnexpectedItem(**r) for r in unexpected],
        receipt=receipt["number"] if receipt else None,
    )  # fmt: skip


@router.post("/asns/{number}/close", dependencies=[Depends(MANAGERS)])
async def close(number: str, pool: PoolDep, user: CurrentUser) -> ReceiptOut:
    """Receiving is over: each short line opens a short_receipt exception, the receipt is
    made (`short`, or `complete`), the ASN is received and its doors are freed. An ASN
    already fully received only frees its doors. 409 for a draft or cancelled ASN."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return ReceiptOut(**await receipts.close_receiving(conn, number, user.username))


@router.get("/receipts/{number}", dependencies=[Depends(MANAGERS)])
async def receipt(number: str, pool: PoolDep) -> ReceiptOut:
    """A receipt: per line ordered, shipped, received, over and short; complete or short."""
    async with pool.connection() as conn:
        found = await receipts.read_receipt(conn, number=number)
    if found is None:
        with as_http():
            raise NotFound(f"no receipt {number}: receipts are numbered RCV-<ASN number>")
    return ReceiptOut(**found)
