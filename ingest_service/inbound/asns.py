"""ASNs: the supplier creates one from an acknowledged PO, edits the draft, submits, deletes
or cancels it; a replacement names (and cancels) the ASN it replaces.

Locks: the PO row first, then the ASN row. Every change to what a PO's ASNs ship holds the
PO's lock, so two submits against one PO run one after the other and the second sees the
first (the quantity rule in `inbound.asn`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from inbound.asn import (
    AsnAction,
    AsnStatus,
    Package,
    asn_move,
    default_quantities,
    package_errors,
    quantity_errors,
)
from inbound.purchase_orders import PoStatus, asn_allowed
from ingest_service.dispatch.errors import Conflict, NotFound, Refused

from .access import SCOPE, Viewer, books_of
from .documents import find_po

_SELECT = (
    "SELECT d.id, d.number, d.status, p.number AS po_number, d.po_id, s.ref AS supplier_ref,"
    " d.estimated_delivery, d.carrier, d.tracking_number, r.number AS replaces,"
    " d.created_at, d.created_by, d.submitted_at, d.cancelled_at, d.cancel_reason,"
    " d.received_at FROM asns d JOIN purchase_orders p ON p.id = d.po_id"
    " JOIN suppliers s ON s.id = d.supplier_id LEFT JOIN asns r ON r.id = d.replaces_asn_id"
)
SHIPPING_FIELDS = ("estimated_delivery", "carrier", "tracking_number")


def _missing(number: str) -> NotFound:
    return NotFound(f"no ASN {number}: GET /api/v1/asns lists yours")


async def find_asn(
    conn: AsyncConnection[Any], viewer: Viewer, number: str, *, lock: bool = False
) -> dict[str, Any]:
    """The ASN as the viewer may see it; with `lock`, its PO and then it are locked."""
    cur = conn.cursor(row_factory=dict_row)
    query = _SELECT + f" WHERE d.number = %(number)s AND {SCOPE}"
    params = {"number": number, **viewer.params}
    await cur.execute(query, params)
    row = await cur.fetchone()
    if row is None:
        raise _missing(number)
    if lock:
        await conn.execute(
            "SELECT 1 FROM purchase_orders WHERE id = %s FOR UPDATE", (row["po_id"],)
        )
        await cur.execute(query + " FOR UPDATE OF d", params)
        row = await cur.fetchone()
        assert row is not None  # ASNs are only deleted under their PO's lock
    return row


async def list_asns(
    conn: AsyncConnection[Any],
    viewer: Viewer,
    *,
    status: Sequence[AsnStatus] | None = None,
    po: str | None = None,
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _SELECT
        + f" WHERE {SCOPE} AND (%(statuses)s::text[] IS NULL OR d.status = ANY(%(statuses)s))"
        " AND (%(po)s::text IS NULL OR p.number = %(po)s) ORDER BY d.created_at DESC, d.id DESC",
        {"statuses": [s.value for s in status] if status else None, "po": po, **viewer.params},
    )
    return await cur.fetchall()


async def _check_lines(
    conn: AsyncConnection[Any],
    *,
    asn: str,
    po: dict[str, Any],
    asn_id: int | None,
    quantities: Mapping[int, int],
    packages: Sequence[Package],
) -> None:
    books = await books_of(conn, po["id"], leave_out=asn_id)
    errors = quantity_errors(asn, po["number"], books, quantities)
    errors += package_errors(asn, packages, quantities)
    if errors:
        raise Refused("; ".join(errors))
    cur = await conn.execute(
        "SELECT p.sscc, a.number FROM asn_packages p JOIN asns a ON a.id = p.asn_id"
        " WHERE p.sscc = ANY(%s) AND a.status <> 'cancelled' AND a.id IS DISTINCT FROM %s"
        " ORDER BY p.sscc",
        ([p.sscc for p in packages], asn_id),
    )
    if taken := await cur.fetchall():
        raise Conflict(
            "; ".join(f"SSCC {sscc} is already declared on ASN {other}" for sscc, other in taken)
        )


async def _write_lines(
    conn: AsyncConnection[Any],
    asn_id: int,
    po_id: int,
    quantities: Mapping[int, int] | None,
    packages: Sequence[Package] | None,
) -> None:
    async with conn.cursor() as cur:
        if quantities is not None:
            await cur.execute("DELETE FROM asn_lines WHERE asn_id = %s", (asn_id,))
            await cur.executemany(
                "INSERT INTO asn_lines (asn_id, po_id, po_line_no, quantity)"
                " VALUES (%s, %s, %s, %s)",
                [(asn_id, po_id, no, qty) for no, qty in sorted(quantities.items())],
            )
        if packages is not None:
            await cur.execute("DELETE FROM asn_packages WHERE asn_id = %s", (asn_id,))
            await cur.executemany(
                "INSERT INTO asn_packages (asn_id, sscc, epc, po_line_no, quantity)"
                " VALUES (%s, %s, %s, %s, %s)",
                [(asn_id, p.sscc, p.epc, p.po_line_no, p.quantity) for p in packages],
            )


async def _new_number(conn: AsyncConnection[Any], po: dict[str, Any]) -> str:
    cur = await conn.execute("SELECT count(*) FROM asns WHERE po_id = %s", (po["id"],))
    n = (await cur.fetchone() or (0,))[0]
    while True:
        n += 1
        candidate = f"{po['number']}-ASN{n}"
        cur = await conn.execute("SELECT 1 FROM asns WHERE number = %s", (candidate,))
        if await cur.fetchone() is None:
            return candidate


async def create_asn(
    conn: AsyncConnection[Any],
    viewer: Viewer,
    po_number: str,
    *,
    number: str | None,
    estimated_delivery: date | None,
    carrier: str | None,
    tracking_number: str | None,
    quantities: Mapping[int, int] | None,
    packages: Sequence[Package],
    replaces: str | None,
    at: datetime,
) -> str:
    """A draft ASN against an acknowledged PO; its number. Lines default to what remains."""
    po = await find_po(conn, viewer, po_number, lock=True)
    if why := asn_allowed(po_number, PoStatus(po["status"])):
        raise Conflict(why)
    number = number or await _new_number(conn, po)
    cur = await conn.execute("SELECT 1 FROM asns WHERE number = %s", (number,))
    if await cur.fetchone() is not None:
        raise Conflict(f"ASN {number} already exists; choose another number or leave it out")
    replaced_id = None
    if replaces is not None:
        old = await find_asn(conn, viewer, replaces, lock=True)
        if old["po_id"] != po["id"]:
            raise Refused(f"ASN {replaces} is for PO {old['po_number']}, not {po_number}")
        replaced_id = old["id"]
        if old["status"] != AsnStatus.CANCELLED:
            await _cancel(conn, old, f"replaced by ASN {number}", at=at)
    if quantities is None:
        quantities = default_quantities(await books_of(conn, po["id"]))
        if not quantities:
            raise Conflict(
                f"purchase order {po_number} has nothing left to ship: its submitted and"
                " received ASNs ship every material line in full"
            )
    await _check_lines(
        conn, asn=number, po=po, asn_id=None, quantities=quantities, packages=packages
    )
    cur = await conn.execute(
        "INSERT INTO asns (number, po_id, supplier_id, estimated_delivery, carrier,"
        " tracking_number, replaces_asn_id, created_at, created_by)"
        " SELECT %s, id, supplier_id, %s, %s, %s, %s, %s, %s FROM purchase_orders WHERE id = %s"
        " RETURNING id",
        (number, estimated_delivery, carrier, tracking_number, replaced_id, at,
         viewer.username, po["id"]),
    )  # fmt: skip
    asn_id = (await cur.fetchone() or (None,))[0]
    await _write_lines(conn, asn_id, po["id"], quantities, packages)
    return number


async def update_asn(
    conn: AsyncConnection[Any],
    viewer: Viewer,
    number: str,
    *,
    changes: Mapping[str, Any],
    quantities: Mapping[int, int] | None,
    packages: Sequence[Package] | None,
) -> None:
    """Change a draft: shipping fields given in `changes`, and lines or packages if given."""
    asn = await find_asn(conn, viewer, number, lock=True)
    if why := asn_move(number, AsnStatus(asn["status"]), AsnAction.EDIT):
        raise Conflict(why)
    if quantities is not None or packages is not None:
        cur = await conn.execute(
            "SELECT po_line_no, quantity FROM asn_lines WHERE asn_id = %s", (asn["id"],)
        )
        new_quantities = quantities if quantities is not None else dict(await cur.fetchall())
        if packages is None:
            packages = await packages_of(conn, asn["id"])
        po = {"id": asn["po_id"], "number": asn["po_number"]}
        await _check_lines(
            conn, asn=number, po=po, asn_id=asn["id"], quantities=new_quantities, packages=packages
        )
        await _write_lines(conn, asn["id"], asn["po_id"], quantities, packages)
    for name in SHIPPING_FIELDS:
        if name in changes:
            await conn.execute(
                f"UPDATE asns SET {name} = %s WHERE id = %s",  # noqa: S608 (a fixed name)
                (changes[name], asn["id"]),
            )


async def packages_of(conn: AsyncConnection[Any], asn_id: int) -> list[Package]:
    cur = await conn.execute(
        "SELECT sscc, po_line_no, quantity, epc FROM asn_packages WHERE asn_id = %s ORDER BY sscc",
        (asn_id,),
    )
    return [Package(*r) for r in await cur.fetchall()]


async def delete_asn(conn: AsyncConnection[Any], viewer: Viewer, number: str) -> None:
    asn = await find_asn(conn, viewer, number, lock=True)
    if why := asn_move(number, AsnStatus(asn["status"]), AsnAction.DELETE):
        raise Conflict(why)
    await conn.execute("DELETE FROM asns WHERE id = %s", (asn["id"],))


async def submit_asn(
    conn: AsyncConnection[Any], viewer: Viewer, number: str, *, at: datetime
) -> None:
    """Send the draft to the buyer; refused if the PO's submitted ASNs would then ship too much."""
    asn = await find_asn(conn, viewer, number, lock=True)
    if why := asn_move(number, AsnStatus(asn["status"]), AsnAction.SUBMIT):
        raise Conflict(why)
    po = await find_po(conn, viewer, asn["po_number"])
    if why := asn_allowed(po["number"], PoStatus(po["status"])):
        raise Conflict(why)
    cur = await conn.execute(
        "SELECT po_line_no, quantity FROM asn_lines WHERE asn_id = %s", (asn["id"],)
    )
    quantities = dict(await cur.fetchall())
    try:
        await _check_lines(
            conn, asn=number, po=po, asn_id=asn["id"], quantities=quantities,
            packages=await packages_of(conn, asn["id"]),
        )  # fmt: skip
    except Refused as err:
        # The draft was fine when written; another ASN was submitted since.
        raise Conflict(f"ASN {number} cannot be submitted: {err}") from None
    await conn.execute(
        "UPDATE asns SET status = 'submitted', submitted_at = %s WHERE id = %s", (at, asn["id"])
    )


async def cancel_asn(
    conn: AsyncConnection[Any], viewer: Viewer, number: str, *, reason: str, at: datetime
) -> None:
    asn = await find_asn(conn, viewer, number, lock=True)
    await _cancel(conn, asn, reason, at=at)


async def _cancel(
    conn: AsyncConnection[Any], asn: dict[str, Any], reason: str, *, at: datetime
) -> None:
    if why := asn_move(asn["number"], AsnStatus(asn["status"]), AsnAction.CANCEL):
        raise Conflict(why)
    await conn.execute(
        "UPDATE asns SET status = 'cancelled', cancelled_at = %s, cancel_reason = %s WHERE id = %s",
        (at, reason, asn["id"]),
    )
