"""Receiving against an ASN: what one scan at an inbound door counts. Pure, no I/O.

The ingest side finds the door's ASN, its lines, its declared packages and what was counted
so far, and asks `reconcile` what a scan's keys mean: a declared pallet or case (its SSCC or
EPC) counts its quantity once, a unit (a GTIN) counts one; beyond what the line shipped is
`over`, a code on no line of the ASN is `unexpected`, a pallet seen before is a `repeat`.
See docs/inbound.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from event_contract import VerdictKind


class Outcome(StrEnum):
    EXPECTED = "expected"  # counts against a line, within what it shipped
    OVER = "over"  # counts against a line, beyond what it shipped
    UNEXPECTED = "unexpected"  # on no line of this ASN
    REPEAT = "repeat"  # a pallet, case or tagged unit already counted: not more goods


@dataclass(frozen=True, slots=True)
class AsnLine:
    po_line_no: int
    sku: str
    gtin: str | None
    ordered: int
    shipped: int


@dataclass(frozen=True, slots=True)
class DeclaredPackage:
    sscc: str
    epc: str | None
    po_line_no: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Asn:
    number: str
    lines: tuple[AsnLine, ...]
    packages: tuple[DeclaredPackage, ...] = ()

    def line(self, po_line_no: int) -> AsnLine:
        return next(x for x in self.lines if x.po_line_no == po_line_no)

    def package(self, sscc: str | None, epc: str | None) -> DeclaredPackage | None:
        for p in self.packages:
            if (epc and p.epc and p.epc.upper() == epc.upper()) or (sscc and p.sscc == sscc):
                return p
        return None


@dataclass(frozen=True, slots=True)
class ScanSeen:
    """The keys of one scan (see orders/scan_keys.py) and the SKU its GTIN names, if any."""

    code: str
    sscc: str | None = None
    epc: str | None = None
    gtin: str | None = None
    sku: str | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """What an ASN's scans counted so far: per line everything scanned for it (expected and
    over), and the packages and tagged units already counted (their SSCC or EPC)."""

    scanned: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    seen: frozenset[str] = frozenset()

    def received(self, po_line_no: int) -> int:
        return self.scanned.get(po_line_no, 0)

    def after(self, r: Reconciled) -> Tally:
        seen = self.seen | {r.once} if r.once else self.seen
        if r.po_line_no is None or r.outcome is Outcome.REPEAT:
            return replace(self, seen=seen)
        scanned = dict(self.scanned)
        scanned[r.po_line_no] = scanned.get(r.po_line_no, 0) + r.quantity
        return Tally(MappingProxyType(scanned), seen)


@dataclass(frozen=True, slots=True)
class Reconciled:
    outcome: Outcome
    verdict: VerdictKind
    message: str
    quantity: int = 0  # goods this scan counts (0 for a repeat)
    expected: int = 0  # of `quantity`, within what the line shipped
    over: int = 0  # of `quantity`, beyond it
    po_line_no: int | None = None
    sku: str | None = None
    sscc: str | None = None  # the declared package it was, if one
    once: str | None = None  # the SSCC or EPC that must not count again
    exception: str | None = None  # the exception kind to open


def reconcile(asn: Asn, tally: Tally, scan: ScanSeen) -> Reconciled:
    """What one scan at a door receiving `asn` counts, given what was counted before it."""
    package = asn.package(scan.sscc, scan.epc)
    if package is not None:
        line = asn.line(package.po_line_no)
        if package.sscc in tally.seen:
            return Reconciled(
                Outcome.REPEAT, VerdictKind.DUPLICATE,
                f"package {package.sscc} already received (ASN {asn.number} line"
                f" {line.po_line_no} {line.sku}): not counted again",
                po_line_no=line.po_line_no, sku=line.sku, sscc=package.sscc,
            )  # fmt: skip
        what = f"package {package.sscc} x{package.quantity}"
        return _count(asn, tally, line, package.quantity, what, package.sscc, package.sscc)
    unit_key = scan.epc if scan.epc and scan.gtin else None  # a serialized unit's own tag
    lines = [x for x in asn.lines if scan.gtin and x.gtin == scan.gtin]
    if lines:
        if unit_key and unit_key in tally.seen:
            return Reconciled(
                Outcome.REPEAT, VerdictKind.DUPLICATE,
                f"tag {unit_key} already received (ASN {asn.number}): not counted again",
                po_line_no=lines[0].po_line_no, sku=lines[0].sku,
            )  # fmt: skip
        # Several lines of one product fill in line order; beyond them all, the last is over.
        open_lines = [x for x in lines if tally.received(x.po_line_no) < x.shipped]
        line = open_lines[0] if open_lines else lines[-1]
        return _count(asn, tally, line, 1, f"1 x {line.sku}", None, unit_key)
    once = scan.sscc or scan.epc
    if once and once in tally.seen:
        return Reconciled(
            Outcome.REPEAT, VerdictKind.DUPLICATE,
            f"{once} was already reported as not on ASN {asn.number}",
        )  # fmt: skip
    return Reconciled(
        Outcome.UNEXPECTED, VerdictKind.WRONG_ORDER,
        f"unexpected: {_describe(scan)} is on no line of ASN {asn.number}; set it aside",
        quantity=1, sku=scan.sku, once=once, exception="unexpected_item",
    )  # fmt: skip


def _count(
    asn: Asn, tally: Tally, line: AsnLine, quantity: int, what: str, sscc: str | None,
    once: str | None,
) -> Reconciled:  # fmt: skip
    before = tally.received(line.po_line_no)
    expected = max(0, min(quantity, line.shipped - before))
    over = quantity - expected
    after = before + quantity
    where = f"line {line.po_line_no} {line.sku}"
    if over:
        return Reconciled(
            Outcome.OVER, VerdictKind.WRONG_ORDER,
            f"over: {where} shipped {line.shipped}, received {after} ({what}, ASN {asn.number})",
            quantity, expected, over, line.po_line_no, line.sku, sscc, once, "over_receipt",
        )  # fmt: skip
    return Reconciled(
        Outcome.EXPECTED, VerdictKind.ACCEPTED,
        f"ASN {asn.number} {where}: {what}, received {after} of {line.shipped}",
        quantity, expected, 0, line.po_line_no, line.sku, sscc, once,
    )  # fmt: skip


def _describe(scan: ScanSeen) -> str:
    if scan.sscc:
        return f"package {scan.sscc}"
    if scan.gtin:
        return f"GTIN {scan.gtin}" + (f" ({scan.sku})" if scan.sku else " (no product)")
    return f"code {scan.code[:40]}"


@dataclass(frozen=True, slots=True)
class LineStatus:
    po_line_no: int
    sku: str
    ordered: int
    shipped: int
    received: int  # everything scanned for the line, over included
    over: int
    short: int

    def as_json(self) -> dict[str, int | str]:
        return {
            "po_line_no": self.po_line_no, "sku": self.sku, "ordered": self.ordered,
            "shipped": self.shipped, "received": self.received, "over": self.over,
            "short": self.short,
        }  # fmt: skip


def line_status(asn: Asn, tally: Tally) -> list[LineStatus]:
    out = []
    for x in sorted(asn.lines, key=lambda x: x.po_line_no):
        got = tally.received(x.po_line_no)
        over, short = max(0, got - x.shipped), max(0, x.shipped - got)
        out.append(LineStatus(x.po_line_no, x.sku, x.ordered, x.shipped, got, over, short))
    return out


def fully_received(asn: Asn, tally: Tally) -> bool:
    """Every line has received what it shipped (more is over, and still received)."""
    return all(s.short == 0 for s in line_status(asn, tally))


def short_lines(asn: Asn, tally: Tally) -> list[LineStatus]:
    """The lines a person closing the receipt now leaves short."""
    return [s for s in line_status(asn, tally) if s.short]


def short_message(asn: Asn, s: LineStatus) -> str:
    return (
        f"short: ASN {asn.number} line {s.po_line_no} {s.sku} shipped {s.shipped},"
        f" received {s.received} ({s.short} missing)"
    )


def receipt_number(asn_number: str) -> str:
    return f"RCV-{asn_number}"
