"""Inbound: suppliers, purchase orders and their ASNs (docs/inbound.md).

The buyer (dispatchers, admins) keeps suppliers and sends POs; a supplier's users
acknowledge them and ship against them with ASNs. Both read; a supplier user sees only its
own supplier's documents, and another supplier's PO, ASN or attachment is a 404.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Response
from psycopg import AsyncConnection

from inbound.asn import AsnStatus, Package
from inbound.purchase_orders import PoStatus
from ingest_service.auth import CurrentUser, PoolDep, Role, User, requires
from ingest_service.dispatch.errors import Refused, as_http
from ingest_service.inbound import asn_notes, asns, documents, suppliers
from ingest_service.inbound.access import Viewer, viewer_of

from .inbound_models import (
    AsnDetail,
    AsnIn,
    AsnLineIn,
    AsnOut,
    AsnPatch,
    AttachmentIn,
    Created,
    MilestoneIn,
    NoteIn,
    OptionalReason,
    PackageIn,
    PoDetail,
    PoIn,
    PoOut,
    Reason,
    SupplierIn,
    SupplierOut,
    SupplierPatch,
)

router = APIRouter(tags=["inbound"])
BUYERS = requires(Role.DISPATCHER)
BOTH = requires(Role.DISPATCHER, Role.SUPPLIER)
SUPPLIERS = requires(Role.SUPPLIER)  # and admins, acting for a supplier


@asynccontextmanager
async def _session(pool: PoolDep, user: User) -> AsyncIterator[tuple[AsyncConnection[Any], Viewer]]:
    """One transaction, the viewer, and refusals turned into their HTTP status."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            yield conn, await viewer_of(conn, user)


def _now() -> datetime:
    return datetime.now(UTC)


# --- suppliers (buyer) --------------------------------------------------------------------


@router.get("/suppliers", dependencies=[Depends(BUYERS)])
async def list_suppliers(pool: PoolDep, user: CurrentUser) -> list[SupplierOut]:
    async with _session(pool, user) as (conn, _):
        return [SupplierOut.model_validate(s) for s in await suppliers.list_suppliers(conn)]


@router.post("/suppliers", status_code=201, dependencies=[Depends(BUYERS)])
async def create_supplier(body: SupplierIn, pool: PoolDep, user: CurrentUser) -> SupplierOut:
    async with _session(pool, user) as (conn, _):
        row = await suppliers.create_supplier(conn, **body.model_dump())
    return SupplierOut.model_validate(row)


@router.patch("/suppliers/{ref}", dependencies=[Depends(BUYERS)])
async def update_supplier(
    ref: str, body: SupplierPatch, pool: PoolDep, user: CurrentUser
) -> SupplierOut:
    """Change the fields given; `"email": null` stops the supplier's reminders."""
    changes = body.model_dump(exclude_unset=True)
    if any(name in changes and changes[name] is None for name in ("name", "reminder_days")):
        raise_refusal("name and reminder_days cannot be null; leave them out to keep them")
    async with _session(pool, user) as (conn, _):
        row = await suppliers.update_supplier(conn, ref, changes)
    return SupplierOut.model_validate(row)


@router.post("/suppliers/{ref}/users/{username}", dependencies=[Depends(requires(Role.ADMIN))])
async def link_user(ref: str, username: str, pool: PoolDep, user: CurrentUser) -> SupplierOut:
    """Make an existing supplier-role user one of this supplier's users."""
    async with _session(pool, user) as (conn, _):
        return SupplierOut.model_validate(await suppliers.link_user(conn, ref, username))


def raise_refusal(message: str) -> NoReturn:
    with as_http():
        raise Refused(message)
    raise AssertionError("unreachable")


# --- purchase orders ----------------------------------------------------------------------


@router.post("/purchase-orders", status_code=201, dependencies=[Depends(BUYERS)])
async def create_po(body: PoIn, pool: PoolDep, user: CurrentUser) -> PoDetail:
    """Send a PO to a supplier: it starts as `sent`, lines numbered 1, 2, ... as given."""
    lines = [documents.NewLine(**line.model_dump()) for line in body.lines]
    async with _session(pool, user) as (conn, viewer):
        await documents.create_po(
            conn,
            **body.model_dump(exclude={"lines"}),
            lines=lines,
            actor=user.username,
        )
        return PoDetail.model_validate(await documents.get_po(conn, viewer, body.number))


@router.get("/purchase-orders", dependencies=[Depends(BOTH)])
async def list_pos(
    pool: PoolDep, user: CurrentUser, status: Annotated[list[PoStatus] | None, Query()] = None
) -> list[PoOut]:
    """Your POs (a supplier's users see their supplier's), by delivery date."""
    async with _session(pool, user) as (conn, viewer):
        rows = await documents.list_pos(conn, viewer, status=status)
    return [PoOut.model_validate(r) for r in rows]


@router.get("/purchase-orders/{number}", dependencies=[Depends(BOTH)])
async def get_po(number: str, pool: PoolDep, user: CurrentUser) -> PoDetail:
    """The PO, each line with ordered, shipped and remaining, and its ASNs."""
    async with _session(pool, user) as (conn, viewer):
        return PoDetail.model_validate(await documents.get_po(conn, viewer, number))


@router.post("/purchase-orders/{number}/acknowledge", dependencies=[Depends(SUPPLIERS)])
async def acknowledge_po(number: str, pool: PoolDep, user: CurrentUser) -> PoDetail:
    """The supplier has seen the PO and its comments; ASNs can now be made against it."""
    async with _session(pool, user) as (conn, viewer):
        await documents.acknowledge_po(conn, viewer, number, at=_now())
        return PoDetail.model_validate(await documents.get_po(conn, viewer, number))


@router.post("/purchase-orders/{number}/cancel", dependencies=[Depends(BUYERS)])
async def cancel_po(
    number: str, pool: PoolDep, user: CurrentUser, body: OptionalReason | None = None
) -> PoDetail:
    """Cancel the PO and its draft and submitted ASNs; refused once goods were received."""
    reason = body.reason if body else None
    async with _session(pool, user) as (conn, viewer):
        await documents.cancel_po(conn, viewer, number, reason=reason, at=_now())
        return PoDetail.model_validate(await documents.get_po(conn, viewer, number))


# --- ASNs ---------------------------------------------------------------------------------


def _quantities(lines: list[AsnLineIn] | None) -> dict[int, int] | None:
    if lines is None:
        return None
    quantities: dict[int, int] = {}
    for line in lines:
        if line.po_line_no in quantities:
            raise_refusal(f"PO line {line.po_line_no} appears twice; give it once")
        quantities[line.po_line_no] = line.quantity
    return quantities


def _packages(packages: list[PackageIn] | None) -> list[Package] | None:
    if packages is None:
        return None
    return [Package(p.sscc, p.po_line_no, p.quantity, p.epc) for p in packages]


@router.post("/purchase-orders/{number}/asns", status_code=201, dependencies=[Depends(SUPPLIERS)])
async def create_asn(number: str, body: AsnIn, pool: PoolDep, user: CurrentUser) -> AsnDetail:
    """A draft ASN from an acknowledged PO; without lines, every material line's remainder."""
    async with _session(pool, user) as (conn, viewer):
        created = await asns.create_asn(
            conn,
            viewer,
            number,
            number=body.number,
            estimated_delivery=body.estimated_delivery,
            carrier=body.carrier,
            tracking_number=body.tracking_number,
            quantities=_quantities(body.lines),
            packages=_packages(body.packages) or [],
            replaces=body.replaces,
            at=_now(),
        )
        return AsnDetail.model_validate(await asn_notes.get_asn(conn, viewer, created))


@router.get("/asns", dependencies=[Depends(BOTH)])
async def list_asns(
    pool: PoolDep,
    user: CurrentUser,
    status: Annotated[list[AsnStatus] | None, Query()] = None,
    po: Annotated[str | None, Query(description="PO number")] = None,
) -> list[AsnOut]:
    """Your ASNs, newest first."""
    async with _session(pool, user) as (conn, viewer):
        rows = await asns.list_asns(conn, viewer, status=status, po=po)
    return [AsnOut.model_validate(r) for r in rows]


@router.get("/asns/{number}", dependencies=[Depends(BOTH)])
async def get_asn(number: str, pool: PoolDep, user: CurrentUser) -> AsnDetail:
    async with _session(pool, user) as (conn, viewer):
        return AsnDetail.model_validate(await asn_notes.get_asn(conn, viewer, number))


@router.patch("/asns/{number}", dependencies=[Depends(SUPPLIERS)])
async def update_asn(number: str, body: AsnPatch, pool: PoolDep, user: CurrentUser) -> AsnDetail:
    """Change a draft; lines or packages, when given, replace the old ones."""
    changes = body.model_dump(exclude_unset=True, exclude={"lines", "packages"})
    async with _session(pool, user) as (conn, viewer):
        await asns.update_asn(
            conn,
            viewer,
            number,
            changes=changes,
            quantities=_quantities(body.lines),
            packages=_packages(body.packages),
        )
        return AsnDetail.model_validate(await asn_notes.get_asn(conn, viewer, number))


@router.delete("/asns/{number}", status_code=204, dependencies=[Depends(SUPPLIERS)])
async def delete_asn(number: str, pool: PoolDep, user: CurrentUser) -> None:
    """Delete a draft; a submitted ASN is cancelled instead."""
    async with _session(pool, user) as (conn, viewer):
        await asns.delete_asn(conn, viewer, number)


@router.post("/asns/{number}/submit", dependencies=[Depends(SUPPLIERS)])
async def submit_asn(number: str, pool: PoolDep, user: CurrentUser) -> AsnDetail:
    """Send the draft to the buyer; refused if the PO's lines would ship more than ordered."""
    async with _session(pool, user) as (conn, viewer):
        await asns.submit_asn(conn, viewer, number, at=_now())
        return AsnDetail.model_validate(await asn_notes.get_asn(conn, viewer, number))


@router.post("/asns/{number}/cancel", dependencies=[Depends(SUPPLIERS)])
async def cancel_asn(number: str, body: Reason, pool: PoolDep, user: CurrentUser) -> AsnDetail:
    """Cancel a draft or submitted ASN; its quantities are free for a new one."""
    async with _session(pool, user) as (conn, viewer):
        await asns.cancel_asn(conn, viewer, number, reason=body.reason, at=_now())
        return AsnDetail.model_validate(await asn_notes.get_asn(conn, viewer, number))


@router.post("/asns/{number}/milestones", status_code=201, dependencies=[Depends(SUPPLIERS)])
async def add_milestone(
    number: str, body: MilestoneIn, pool: PoolDep, user: CurrentUser
) -> Created:
    async with _session(pool, user) as (conn, viewer):
        return Created(id=await asn_notes.add_milestone(conn, viewer, number, **body.model_dump()))


@router.post("/asns/{number}/notes", status_code=201, dependencies=[Depends(BOTH)])
async def add_note(number: str, body: NoteIn, pool: PoolDep, user: CurrentUser) -> Created:
    """A note, or (kind link, with a url) an external link."""
    if (body.kind == "link") != (body.url is not None):
        raise_refusal("a link needs a url, and only a link has one")
    fields = body.model_dump()
    fields["url"] = str(body.url) if body.url else None
    async with _session(pool, user) as (conn, viewer):
        return Created(id=await asn_notes.add_note(conn, viewer, number, **fields))


@router.post("/asns/{number}/attachments", status_code=201, dependencies=[Depends(BOTH)])
async def add_attachment(
    number: str, body: AttachmentIn, pool: PoolDep, user: CurrentUser
) -> Created:
    """Attach a file sent as base64 JSON (pdf, png, jpeg, csv, xlsx, text; 5 MB at most)."""
    try:
        content = base64.b64decode(body.content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise_refusal(f"{body.filename}: content_base64 is not valid base64")
    async with _session(pool, user) as (conn, viewer):
        note_id = await asn_notes.add_note(
            conn,
            viewer,
            number,
            kind="attachment",
            title=body.title or body.filename,
            filename=body.filename,
            content_type=body.content_type,
            content=content,
            shared_externally=body.shared_externally,
        )
    return Created(id=note_id)


@router.get("/asns/{number}/attachments/{note_id}", dependencies=[Depends(BOTH)])
async def download_attachment(
    number: str, note_id: int, pool: PoolDep, user: CurrentUser
) -> Response:
    """The file, always as a download, never rendered in the browser."""
    async with _session(pool, user) as (conn, viewer):
        filename, content_type, content = await asn_notes.get_attachment(
            conn, viewer, number, note_id
        )
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in filename)
    headers = {
        "Content-Disposition": (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-store",
    }
    return Response(content, media_type=content_type, headers=headers)
