"""Advance Shipping Notices: statuses, the quantity rule, packages, milestones. Pure.

draft → submitted → received (receiving sets it); a draft may be deleted; a draft or a
submitted ASN may be cancelled, and a replacement names the one it replaces.

The quantity rule (docs/inbound.md): per PO line, what the PO's submitted and received ASNs
ship together never exceeds what was ordered. Drafts and cancelled ASNs do not count: two
drafts may each propose the whole remainder, and whichever is submitted second is refused.
A draft is refused already when its own line exceeds what remains after the submitted and
received ones, since it could never be submitted as it stands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from identifiers.gs1 import check_digit_error

from .purchase_orders import LineKind, PoLine


class AsnStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RECEIVED = "received"
    CANCELLED = "cancelled"
    DELETED = "deleted"  # not stored: the row is removed


class AsnAction(StrEnum):
    """What a person or receiving does to an ASN; each has one target status."""

    SUBMIT = "submit"
    DELETE = "delete"
    CANCEL = "cancel"
    RECEIVE = "receive"
    EDIT = "edit"


# Action -> (the statuses it may start from, the status it leads to).
ASN_TABLE: Mapping[AsnAction, tuple[frozenset[AsnStatus], AsnStatus]] = MappingProxyType(
    {
        AsnAction.EDIT: (frozenset({AsnStatus.DRAFT}), AsnStatus.DRAFT),
        AsnAction.SUBMIT: (frozenset({AsnStatus.DRAFT}), AsnStatus.SUBMITTED),
        AsnAction.DELETE: (frozenset({AsnStatus.DRAFT}), AsnStatus.DELETED),
        AsnAction.CANCEL: (frozenset({AsnStatus.DRAFT, AsnStatus.SUBMITTED}), AsnStatus.CANCELLED),
        AsnAction.RECEIVE: (frozenset({AsnStatus.SUBMITTED}), AsnStatus.RECEIVED),
    }
)

_WHY_NOT: Mapping[AsnAction, str] = MappingProxyType(
    {
        AsnAction.EDIT: "only a draft can be changed; cancel it and create a new ASN instead",
        AsnAction.SUBMIT: "only a draft can be submitted",
        AsnAction.DELETE: "only a draft can be deleted; cancel a submitted ASN instead",
        AsnAction.CANCEL: "only a draft or a submitted ASN can be cancelled",
        AsnAction.RECEIVE: "only a submitted ASN can be received",
    }
)

# Statuses whose quantities count as shipped against the PO.
COUNTED = frozenset({AsnStatus.SUBMITTED, AsnStatus.RECEIVED})


def asn_move(number: str, status: AsnStatus, action: AsnAction) -> str | None:
    """None if ASN `number` in `status` may take `action`; otherwise why not.

    The status it leads to is `ASN_TABLE[action][1]`.
    """
    if status in ASN_TABLE[action][0]:
        return None
    return f"ASN {number} is {status}: {_WHY_NOT[action]}"


class MilestoneKind(StrEnum):
    FABRICATION = "fabrication"
    READY_TO_PICK_UP = "ready_to_pick_up"
    PORT_OF_LOADING = "port_of_loading"
    PORT_OF_DISCHARGE = "port_of_discharge"
    CUSTOMS_CLEARANCE = "customs_clearance"
    TRANSPORT_TO_PLANT = "transport_to_plant"


@dataclass(frozen=True, slots=True)
class LineBook:
    """One PO line and how much of it the PO's submitted and received ASNs ship."""

    line: PoLine
    shipped: int = 0
    in_drafts: int = 0

    @property
    def remaining(self) -> int:
        return max(self.line.quantity - self.shipped, 0)


def line_books(
    lines: Iterable[PoLine], others: Iterable[tuple[AsnStatus, Mapping[int, int]]]
) -> dict[int, LineBook]:
    """Each line's book from the PO's other ASNs: (status, {po_line_no: quantity}) each."""
    shipped: dict[int, int] = {}
    drafted: dict[int, int] = {}
    for status, quantities in others:
        into = shipped if status in COUNTED else drafted if status is AsnStatus.DRAFT else None
        if into is not None:
            for line_no, quantity in quantities.items():
                into[line_no] = into.get(line_no, 0) + quantity
    return {
        line.line_no: LineBook(line, shipped.get(line.line_no, 0), drafted.get(line.line_no, 0))
        for line in lines
    }


def default_quantities(books: Mapping[int, LineBook]) -> dict[int, int]:
    """An ASN's lines when none are given: every material line's remaining quantity."""
    return {
        no: book.remaining
        for no, book in sorted(books.items())
        if book.line.kind is LineKind.MATERIAL and book.remaining > 0
    }


def quantity_errors(
    asn: str, po: str, books: Mapping[int, LineBook], quantities: Mapping[int, int]
) -> list[str]:
    """Why ASN `asn` may not ship `quantities` ({po_line_no: quantity}) of PO `po`; [] if it may."""
    if not quantities:
        return [f"ASN {asn} has no lines; name at least one material line of PO {po}"]
    errors = []
    for line_no, quantity in sorted(quantities.items()):
        book = books.get(line_no)
        if book is None:
            errors.append(f"ASN {asn}: purchase order {po} has no line {line_no}")
        elif book.line.kind is not LineKind.MATERIAL:
            errors.append(
                f"ASN {asn}: PO {po} line {line_no} ({book.line.sku}) is a {book.line.kind}"
                " line; only material lines go on an ASN"
            )
        elif quantity <= 0:
            errors.append(f"ASN {asn}: PO {po} line {line_no}: ship at least 1, not {quantity}")
        elif quantity > book.remaining:
            errors.append(
                f"ASN {asn}: PO {po} line {line_no} ({book.line.sku}): {quantity} to ship, but"
                f" {book.line.quantity} ordered, {book.shipped} already shipped on submitted"
                f" ASNs, {book.remaining} remaining"
            )
    return errors


@dataclass(frozen=True, slots=True)
class Package:
    """A case or pallet the supplier declares on the ASN, by SSCC (and EPC when tagged)."""

    sscc: str
    po_line_no: int
    quantity: int
    epc: str | None = None


def sscc_error(sscc: str) -> str | None:
    """None for an 18-digit SSCC with the right check digit; otherwise what is wrong."""
    if len(sscc) != 18 or not (sscc.isdigit() and sscc.isascii()):
        return f"SSCC {sscc!r}: 18 digits needed"
    return check_digit_error("SSCC", sscc)


def package_errors(
    asn: str, packages: Sequence[Package], quantities: Mapping[int, int]
) -> list[str]:
    """Packages have valid SSCCs, once each, on the ASN's lines, not more than a line ships."""
    errors = []
    seen: set[str] = set()
    packed: dict[int, int] = {}
    for p in packages:
        if bad := sscc_error(p.sscc):
            errors.append(f"ASN {asn}: {bad}")
        if p.sscc in seen:
            errors.append(f"ASN {asn}: SSCC {p.sscc} is declared twice")
        seen.add(p.sscc)
        if p.po_line_no not in quantities:
            errors.append(
                f"ASN {asn}: package {p.sscc} is for line {p.po_line_no}, which is not on the ASN"
            )
        packed[p.po_line_no] = packed.get(p.po_line_no, 0) + p.quantity
    for line_no, total in sorted(packed.items()):
        if line_no in quantities and total > quantities[line_no]:
            errors.append(
                f"ASN {asn}: packages of line {line_no} hold {total}, but the line ships"
                f" {quantities[line_no]}"
            )
    return errors


# Attachments: what may be uploaded, and how the first bytes of each type look, so a file
# named .pdf that is really something else is refused (the download is served as declared).
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
ATTACHMENT_TYPES: Mapping[str, tuple[bytes, ...]] = MappingProxyType(
    {
        "application/pdf": (b"%PDF-",),
        "image/png": (b"\x89PNG\r\n\x1a\n",),
        "image/jpeg": (b"\xff\xd8\xff",),
        "text/csv": (),
        "text/plain": (),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    }
)


def attachment_error(filename: str, content_type: str, content: bytes) -> str | None:
    """None if the file may be attached; otherwise what is wrong with it."""
    if content_type not in ATTACHMENT_TYPES:
        allowed = ", ".join(ATTACHMENT_TYPES)
        return f"{filename}: content type {content_type} is not accepted; send one of {allowed}"
    if len(content) > MAX_ATTACHMENT_BYTES:
        return (
            f"{filename}: {len(content):,} bytes is over the limit of {MAX_ATTACHMENT_BYTES:,};"
            " send a smaller file or a link"
        )
    if not content:
        return f"{filename}: the file is empty"
    magic = ATTACHMENT_TYPES[content_type]
    if magic and not content.startswith(magic):
        return f"{filename}: the content is not {content_type}"
    if not magic:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return f"{filename}: a {content_type} file must be UTF-8 text"
    return None
