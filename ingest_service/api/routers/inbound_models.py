"""Request and response bodies of the inbound routes (suppliers, purchase orders, ASNs)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from inbound.asn import MAX_ATTACHMENT_BYTES, AsnStatus, MilestoneKind
from inbound.purchase_orders import LineKind, PoStatus

# A document number or reference; no slash, since it goes into URLs.
Ref = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Quantity = Annotated[int, Field(gt=0, le=10_000_000)]
LineNo = Annotated[int, Field(gt=0, le=10_000)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SupplierIn(_Body):
    ref: Ref
    name: Short
    email: Email | None = Field(None, description="where ASN reminders go; none: no reminders")
    reminder_days: Literal[5, 7, 10] = Field(7, description="days before delivery to remind")


class SupplierPatch(_Body):
    name: Short | None = None
    email: Email | None = None
    reminder_days: Literal[5, 7, 10] | None = None


class SupplierOut(BaseModel):
    ref: str
    name: str
    email: str | None
    reminder_days: int
    created_at: datetime
    users: list[str] = Field(description="the supplier-role users linked to this supplier")


class PoLineIn(_Body):
    sku: Ref
    kind: LineKind = LineKind.MATERIAL
    quantity: Quantity
    unit_price: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = None
    delivery_date: date | None = Field(None, description="the line's own date, if not the PO's")


class PoIn(_Body):
    number: Ref
    supplier: Ref = Field(description="the supplier's ref")
    site: Short = Field(description="where to ship to")
    delivery_date: date
    comments: Text | None = Field(None, description="instructions for the supplier's ASNs")
    lines: list[PoLineIn] = Field(min_length=1, max_length=500)


class Reason(_Body):
    reason: Text


class OptionalReason(_Body):
    reason: Text | None = None


class PoOut(BaseModel):
    number: str
    supplier_ref: str
    supplier_name: str
    site: str
    status: PoStatus
    delivery_date: date
    comments: str | None
    created_at: datetime
    created_by: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class PoLineOut(BaseModel):
    line_no: int
    sku: str
    kind: LineKind
    ordered: int
    unit_price: Decimal | None
    delivery_date: date | None
    shipped: int = Field(description="on the PO's submitted and received ASNs")
    in_drafts: int = Field(description="proposed by draft ASNs; not counted as shipped")
    remaining: int = Field(description="ordered minus shipped")


class AsnBrief(BaseModel):
    number: str
    status: AsnStatus
    estimated_delivery: date | None
    created_at: datetime


class PoDetail(PoOut):
    lines: list[PoLineOut]
    asns: list[AsnBrief]


class AsnLineIn(_Body):
    po_line_no: LineNo
    quantity: Quantity


class PackageIn(_Body):
    sscc: str = Field(description="18 digits, the last a GS1 check digit")
    epc: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    po_line_no: LineNo
    quantity: Quantity


class AsnIn(_Body):
    number: Ref | None = Field(None, description="made from the PO number if left out")
    estimated_delivery: date | None = None
    carrier: Short | None = None
    tracking_number: Short | None = None
    lines: list[AsnLineIn] | None = Field(
        None, max_length=500, description="left out: every material line's remaining quantity"
    )
    packages: list[PackageIn] = Field(default_factory=list, max_length=5000)
    replaces: Ref | None = Field(
        None, description="the ASN this one replaces; cancelled now unless it already is"
    )


class AsnPatch(_Body):
    estimated_delivery: date | None = None
    carrier: Short | None = None
    tracking_number: Short | None = None
    lines: list[AsnLineIn] | None = Field(None, min_length=1, max_length=500)
    packages: list[PackageIn] | None = Field(None, max_length=5000)


class AsnOut(BaseModel):
    number: str
    status: AsnStatus
    po_number: str
    supplier_ref: str
    estimated_delivery: date | None
    carrier: str | None
    tracking_number: str | None
    replaces: str | None
    created_at: datetime
    created_by: str
    submitted_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    received_at: datetime | None


class AsnLineOut(BaseModel):
    po_line_no: int
    sku: str
    ordered: int
    quantity: int = Field(description="shipped on this ASN")
    shipped_on_other_asns: int = Field(description="on the PO's other submitted/received ASNs")


class PackageOut(BaseModel):
    sscc: str
    epc: str | None
    po_line_no: int
    quantity: int


class MilestoneIn(_Body):
    kind: MilestoneKind
    on_date: date
    description: Text | None = None


class MilestoneOut(BaseModel):
    id: int
    kind: MilestoneKind
    on_date: date
    description: str | None
    created_at: datetime
    created_by: str


class NoteIn(_Body):
    kind: Literal["note", "link"] = "note"
    title: Short
    body: Text | None = None
    url: HttpUrl | None = Field(None, description="for a link: http or https")
    shared_externally: bool = Field(True, description="false: only your side sees it")


class AttachmentIn(_Body):
    title: Short | None = Field(None, description="the filename if left out")
    filename: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^/\\\x00-\x1f]+$")]
    content_type: str = Field(description="pdf, png, jpeg, csv, xlsx or plain text")
    # Twice the decoded limit: a file a little over it gets the rule's message, not this one.
    content_base64: str = Field(
        max_length=2 * MAX_ATTACHMENT_BYTES, description="the file, base64; at most 5 MB decoded"
    )
    shared_externally: bool = True


class NoteOut(BaseModel):
    id: int
    kind: Literal["note", "link", "attachment"]
    title: str
    body: str | None
    url: str | None
    filename: str | None
    content_type: str | None
    size: int | None = Field(description="bytes, for an attachment")
    shared_externally: bool
    created_at: datetime
    created_by: str


class AsnDetail(AsnOut):
    lines: list[AsnLineOut]
    packages: list[PackageOut]
    milestones: list[MilestoneOut] = Field(description="by date")
    notes: list[NoteOut] = Field(description="without content; download attachments by id")


class Created(BaseModel):
    id: int
