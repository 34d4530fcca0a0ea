"""An ASN read in full, and what both sides add to it: milestones, notes, links, attachments.

A note or attachment is shared with the other side by default; one that is not shared is
seen only by the side that wrote it (the buyer's staff, or the supplier's users).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from inbound.asn import AsnStatus, MilestoneKind, attachment_error
from ingest_service.dispatch.errors import Conflict, NotFound, Refused

from .access import Viewer, books_of
from .asns import find_asn, packages_of

# The viewer's side wrote it, or it is shared. The author's side is read from the users table.
_VISIBLE = (
    "(n.shared_externally OR CASE WHEN %(buyer)s THEN au.supplier_id IS NULL"
    " ELSE au.supplier_id = %(viewer_supplier)s END)"
)
_NOTES = (
    "SELECT n.id, n.kind, n.title, n.body, n.url, n.filename, n.content_type,"
    " octet_length(n.content) AS size, n.shared_externally, n.created_at, n.created_by"
    " FROM asn_notes n LEFT JOIN users au ON au.username = n.created_by"
)
_ATTACHMENT = (
    "SELECT n.filename, n.content_type, n.content FROM asn_notes n"
    " LEFT JOIN users au ON au.username = n.created_by"
    " WHERE n.id = %(id)s AND n.asn_id = %(asn)s AND n.kind = 'attachment' AND "
)
MILESTONE_STATUSES = frozenset({AsnStatus.DRAFT, AsnStatus.SUBMITTED})


async def get_asn(conn: AsyncConnection[Any], viewer: Viewer, number: str) -> dict[str, Any]:
    """The ASN with its lines (ordered, on this ASN, on the PO's other counted ASNs),
    packages, milestones (by date) and the notes the viewer may see, without content."""
    asn = await find_asn(conn, viewer, number)
    books = await books_of(conn, asn["po_id"], leave_out=asn["id"])
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT po_line_no, quantity FROM asn_lines WHERE asn_id = %s ORDER BY po_line_no",
        (asn["id"],),
    )
    lines = [
        {
            "po_line_no": r["po_line_no"],
            "sku": books[r["po_line_no"]].line.sku,
            "ordered": books[r["po_line_no"]].line.quantity,
            "quantity": r["quantity"],
            "shipped_on_other_asns": books[r["po_line_no"]].shipped,
        }
        for r in await cur.fetchall()
    ]
    await cur.execute(
        "SELECT id, kind, on_date, description, created_at, created_by FROM asn_milestones"
        " WHERE asn_id = %s ORDER BY on_date, id",
        (asn["id"],),
    )
    milestones = await cur.fetchall()
    await cur.execute(
        _NOTES + f" WHERE n.asn_id = %(asn)s AND {_VISIBLE} ORDER BY n.id",
        {"asn": asn["id"], **viewer.params},
    )
    notes = await cur.fetchall()
    packages = [
        {"sscc": p.sscc, "epc": p.epc, "po_line_no": p.po_line_no, "quantity": p.quantity}
        for p in await packages_of(conn, asn["id"])
    ]
    return {**asn, "lines": lines, "packages": packages, "milestones": milestones, "notes": notes}


async def add_milestone(
    conn: AsyncConnection[Any],
    viewer: Viewer,
    number: str,
    *,
    kind: MilestoneKind,
    on_date: date,
    description: str | None,
) -> int:
    asn = await find_asn(conn, viewer, number, lock=True)
    if asn["status"] not in MILESTONE_STATUSES:
        raise Conflict(
            f"ASN {number} is {asn['status']}: milestones go on a draft or submitted ASN"
        )
    cur = await conn.execute(
        "INSERT INTO asn_milestones (asn_id, kind, on_date, description, created_by)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (asn["id"], kind.value, on_date, description, viewer.username),
    )
    return (await cur.fetchone() or (0,))[0]


async def add_note(
    conn: AsyncConnection[Any],
    viewer: Viewer,
    number: str,
    *,
    kind: str,
    title: str,
    body: str | None = None,
    url: str | None = None,
    shared_externally: bool = True,
    filename: str | None = None,
    content_type: str | None = None,
    content: bytes | None = None,
) -> int:
    """Add a note, a link or (with filename, content type and content) an attachment."""
    asn = await find_asn(conn, viewer, number)
    if kind == "attachment":
        if filename is None or content_type is None or content is None:
            raise Refused("an attachment needs a filename, a content type and its content")
        if why := attachment_error(filename, content_type, content):
            raise Refused(f"ASN {number}: {why}")
    cur = await conn.execute(
        "INSERT INTO asn_notes (asn_id, kind, title, body, url, filename, content_type, content,"
        " shared_externally, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (asn["id"], kind, title, body, url, filename, content_type, content,
         shared_externally, viewer.username),
    )  # fmt: skip
    return (await cur.fetchone() or (0,))[0]


async def get_attachment(
    conn: AsyncConnection[Any], viewer: Viewer, number: str, note_id: int
) -> tuple[str, str, bytes]:
    """(filename, content type, content) of an attachment the viewer may see."""
    asn = await find_asn(conn, viewer, number)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _ATTACHMENT + _VISIBLE,
        {"id": note_id, "asn": asn["id"], **viewer.params},
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"ASN {number} has no attachment {note_id}: GET the ASN to list them")
    return row["filename"], row["content_type"], bytes(row["content"])
