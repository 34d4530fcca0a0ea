"""Receiving against ASNs: assign an ASN to an inbound door, follow what its scans counted,
close it (short lines open exceptions), read the receipt. Scans are counted by ingest
(`ingest_service/inbound/receiving.py`); the rules are `inbound.receiving`'s."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from inbound.receiving import (
    Asn,
    Tally,
    fully_received,
    line_status,
    receipt_number,
    short_lines,
    short_message,
)
from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.dispatch.errors import Conflict, NotFound, as_http
from ingest_service.inbound.receiving import (
    INSERT_EXCEPTION,
    INSERT_RECEIPT,
    LINES,
    PACKAGES,
    SCANNED,
    SEEN,
    build_asns,
    build_tallies,
    receipt_lines,
)

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


_ASN = "SELECT id, number, status FROM asns WHERE number = %s"
_LOCK_ASN = _ASN + " FOR UPDATE"


async def _asn(conn: AsyncConnection[Any], number: str, *, lock: bool = False) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_LOCK_ASN if lock else _ASN, (number,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no ASN {number}: check the number with GET /api/v1/asns")
    return row


async def _counted(conn: AsyncConnection[Any], asn: dict[str, Any]) -> tuple[Asn, Tally]:
    cur = conn.cursor(row_factory=dict_row)
    ids = {"ids": [asn["id"]]}
    lines = await (await cur.execute(LINES, ids)).fetchall()
    packages = await (await cur.execute(PACKAGES, ids)).fetchall()
    scanned = await (await cur.execute(SCANNED, ids)).fetchall()
    seen = await (await cur.execute(SEEN, ids)).fetchall()
    built = build_asns({asn["id"]: asn["number"]}, lines, packages)[asn["id"]]
    return built, build_tallies([asn["id"]], scanned, seen)[asn["id"]]


async def _receipt(
    conn: AsyncConnection[Any], *, asn_id: int | None = None, number: str | None = None
) -> ReceiptOut | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT r.number, a.number AS asn, r.status, r.lines, r.completed_at, r.completed_by"
        " FROM receipts r JOIN asns a ON a.id = r.asn_id WHERE r.asn_id = %s OR r.number = %s",
        (asn_id, number),
    )
    row = await cur.fetchone()
    return ReceiptOut(**row) if row else None


@router.put("/docks/{site}/{door}/asn", dependencies=[Depends(DOCK)])
async def assign_asn(
    site: str, door: str, body: AsnAssign, pool: PoolDep, user: CurrentUser
) -> DoorAsnOut:
    """Receive a submitted ASN at this door (receive scans here are counted against it), or
    free the door with `asn: null`. 409 if the ASN is not submitted or the door loads a trip."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            asn_id = None
            if body.asn is not None:
                asn = await _asn(conn, body.asn, lock=True)
                if asn["status"] != "submitted":
                    raise Conflict(
                        f"ASN {body.asn} is {asn['status']}: only a submitted ASN can be received;"
                        f" the supplier submits it with POST /api/v1/asns/{body.asn}/submit"
                    )
                cur = await conn.execute(
                    "SELECT trip_id FROM dock_doors WHERE site = %s AND door = %s FOR UPDATE",
                    (site, door),
                )
                row = await cur.fetchone()
                if row is not None and row[0] is not None:
                    raise Conflict(
                        f"door {door} at {site} is loading trip {row[0]}: clear it with PUT"
                        f' /api/v1/docks/{site}/{door} {{"trip": null}} first'
                    )
                asn_id = asn["id"]
            cur = await conn.cursor(row_factory=dict_row).execute(
                "INSERT INTO dock_doors (site, door, asn_id, assigned_at, assigned_by)"
                " VALUES (%s, %s, %s, now(), %s) ON CONFLICT (site, door) DO UPDATE"
                " SET asn_id = EXCLUDED.asn_id, assigned_at = now(),"
                " assigned_by = EXCLUDED.assigned_by RETURNING site, door, assigned_by,"
                " assigned_at",
                (site, door, asn_id, user.username),
            )
            row = await cur.fetchone()
            assert row is not None
            return DoorAsnOut(asn=body.asn, **row)


@router.get("/asns/{number}/receiving", dependencies=[Depends(DOCK)])
async def receiving(number: str, pool: PoolDep) -> ReceivingOut:
    """Per line what was ordered, shipped and received (over and short), the items on no
    line of the ASN, and whether it is fully received."""
    async with pool.connection() as conn:
        with as_http():
            asn = await _asn(conn, number)
        built, tally = await _counted(conn, asn)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT r.event_id, r.at, r.door, s.code, r.sku, r.sscc FROM asn_receipts r"
            " LEFT JOIN scans s ON s.event_id = r.event_id"
            " WHERE r.asn_id = %s AND r.outcome = 'unexpected' ORDER BY r.at, r.event_id",
            (asn["id"],),
        )
        unexpected = [UnexpectedItem(**r) for r in await cur.fetchall()]
        await cur.execute(
            "SELECT site || '/' || door AS d FROM dock_doors WHERE asn_id = %s ORDER BY 1",
            (asn["id"],),
        )
        doors = [r["d"] for r in await cur.fetchall()]
        receipt = await _receipt(conn, asn_id=asn["id"])
    return ReceivingOut(
        asn=number, status=asn["status"], fully_received=fully_received(built, tally),
        doors=doors, lines=[ReceivingLine(**s.as_json()) for s in line_status(built, tally)],
        unexpected=unexpected, receipt=receipt.number if receipt else None,
    )  # fmt: skip


@router.post("/asns/{number}/close", dependencies=[Depends(MANAGERS)])
async def close(number: str, pool: PoolDep, user: CurrentUser) -> ReceiptOut:
    """Receiving is over: each short line opens a short_receipt exception, the receipt is
    made (`short`, or `complete`), the ASN is received and its doors are freed. An ASN
    already fully received only frees its doors. 409 for a draft or cancelled ASN."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            asn = await _asn(conn, number, lock=True)
            if asn["status"] not in ("submitted", "received"):
                raise Conflict(f"ASN {number} is {asn['status']}: there is nothing to receive")
            await conn.execute("UPDATE dock_doors SET asn_id = NULL WHERE asn_id = %s",
                               (asn["id"],))  # fmt: skip
            if asn["status"] == "submitted":
                built, tally = await _counted(conn, asn)
                short = short_lines(built, tally)
                async with conn.cursor() as cur:
                    await cur.executemany(INSERT_EXCEPTION, [
                        ("short_receipt", short_message(built, s), s.sku, None,
                         user.username, f"short_receipt:{asn['id']}:{s.po_line_no}", asn["id"])
                        for s in short
                    ])  # fmt: skip
                    status = "short" if short else "complete"
                    await cur.execute(INSERT_RECEIPT, (
                        receipt_number(number), asn["id"], status, receipt_lines(built, tally),
                        user.username))  # fmt: skip
                    await cur.execute(
                        "UPDATE asns SET status = 'received', received_at = now() WHERE id = %s",
                        (asn["id"],),
                    )
            receipt = await _receipt(conn, asn_id=asn["id"])
            if receipt is None:
                raise Conflict(f"ASN {number} is received but has no receipt; tell an admin")
            return receipt


@router.get("/receipts/{number}", dependencies=[Depends(MANAGERS)])
async def receipt(number: str, pool: PoolDep) -> ReceiptOut:
    """A receipt: per line ordered, shipped, received, over and short; complete or short."""
    async with pool.connection() as conn:
        found = await _receipt(conn, number=number)
    if found is None:
        with as_http():
            raise NotFound(f"no receipt {number}: receipts are numbered RCV-<ASN number>")
    assert found is not None
    return found
