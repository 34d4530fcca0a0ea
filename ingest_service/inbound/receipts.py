"""Receiving as people run it, in PostgreSQL: assign an ASN to an inbound door, read what
its scans counted, close it (short lines open exceptions, the receipt is made), read a
receipt. The scans themselves are counted by ingest (`receiving.py`); the rules are
`inbound.receiving`'s. Refusals are `dispatch.errors` (the API turns them into 404/409)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from inbound.receiving import Asn, Tally, receipt_number, short_lines, short_message
from ingest_service.dispatch.errors import Conflict, NotFound
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

_ASN = "SELECT id, number, status FROM asns WHERE number = %s"
_RECEIPT = (
    "SELECT r.number, a.number AS asn, r.status, r.lines, r.completed_at, r.completed_by"
    " FROM receipts r JOIN asns a ON a.id = r.asn_id WHERE r.asn_id = %s OR r.number = %s"
)


async def find_asn(
    conn: AsyncConnection[Any], number: str, *, lock: bool = False
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_ASN + (" FOR UPDATE" if lock else ""), (number,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no ASN {number}: check the number with GET /api/v1/asns")
    return row


async def counted(conn: AsyncConnection[Any], asn: dict[str, Any]) -> tuple[Asn, Tally]:
    """The ASN as the rules see it, and what its scans counted so far."""
    cur = conn.cursor(row_factory=dict_row)
    ids = {"ids": [asn["id"]]}
    lines = await (await cur.execute(LINES, ids)).fetchall()
    packages = await (await cur.execute(PACKAGES, ids)).fetchall()
    scanned = await (await cur.execute(SCANNED, ids)).fetchall()
    seen = await (await cur.execute(SEEN, ids)).fetchall()
    built = build_asns({asn["id"]: asn["number"]}, lines, packages)[asn["id"]]
    return built, build_tallies([asn["id"]], scanned, seen)[asn["id"]]


async def read_receipt(
    conn: AsyncConnection[Any], *, asn_id: int | None = None, number: str | None = None
) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_RECEIPT, (asn_id, number))
    return await cur.fetchone()


async def assign_door(
    conn: AsyncConnection[Any], site: str, door: str, number: str | None, by: str
) -> dict[str, Any]:
    """Receive the submitted ASN `number` at this door, or free it (None). Run it in a
    transaction: the ASN and the door are locked."""
    asn_id = None
    if number is not None:
        asn = await find_asn(conn, number, lock=True)
        if asn["status"] != "submitted":
            raise Conflict(
                f"ASN {number} is {asn['status']}: only a submitted ASN can be received;"
                f" the supplier submits it with POST /api/v1/asns/{number}/submit"
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
        " assigned_by = EXCLUDED.assigned_by RETURNING site, door, assigned_by, assigned_at",
        (site, door, asn_id, by),
    )
    assigned = await cur.fetchone()
    assert assigned is not None
    return assigned


async def unexpected_items(conn: AsyncConnection[Any], asn_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT r.event_id, r.at, r.door, s.code, r.sku, r.sscc FROM asn_receipts r"
        " LEFT JOIN scans s ON s.event_id = r.event_id"
        " WHERE r.asn_id = %s AND r.outcome = 'unexpected' ORDER BY r.at, r.event_id",
        (asn_id,),
    )
    return await cur.fetchall()


async def receiving_doors(conn: AsyncConnection[Any], asn_id: int) -> list[str]:
    """ "site/door" of each door receiving the ASN now."""
    cur = await conn.execute(
        "SELECT site || '/' || door FROM dock_doors WHERE asn_id = %s ORDER BY 1", (asn_id,)
    )
    return [r[0] for r in await cur.fetchall()]


async def close_receiving(conn: AsyncConnection[Any], number: str, by: str) -> dict[str, Any]:
    """Receiving is over: short lines open short_receipt exceptions, the receipt is made
    (`short` or `complete`), the ASN is received and its doors freed; an ASN already fully
    received only frees its doors. Run it in a transaction; returns the receipt."""
    asn = await find_asn(conn, number, lock=True)
    if asn["status"] not in ("submitted", "received"):
        raise Conflict(f"ASN {number} is {asn['status']}: there is nothing to receive")
    await conn.execute("UPDATE dock_doors SET asn_id = NULL WHERE asn_id = %s", (asn["id"],))
    if asn["status"] == "submitted":
        built, tally = await counted(conn, asn)
        short = short_lines(built, tally)
        async with conn.cursor() as cur:
            await cur.executemany(INSERT_EXCEPTION, [
                ("short_receipt", short_message(built, s), s.sku, None, by,
                 f"short_receipt:{asn['id']}:{s.po_line_no}", asn["id"])
                for s in short
            ])  # fmt: skip
            status = "short" if short else "complete"
            lines = receipt_lines(built, tally)
            await cur.execute(
                INSERT_RECEIPT, (receipt_number(number), asn["id"], status, lines, by)
            )
            await cur.execute(
                "UPDATE asns SET status = 'received', received_at = now() WHERE id = %s",
                (asn["id"],),
            )
    receipt = await read_receipt(conn, asn_id=asn["id"])
    if receipt is None:
        raise Conflict(f"ASN {number} is received but has no receipt; tell an admin")
    return receipt
