"""Receiving scans at an inbound door with an ASN, reconciled in the ingest writer's transaction.

The scan matcher hands this the receive-stage scans of doors that have an ASN assigned
(`dock_doors.asn_id`). The ASNs are locked (`FOR UPDATE`, in id order) before anything is
counted, so two ingest workers take turns on one ASN, and a person closing it waits for them.
Each scan becomes one `asn_receipts` row (keyed by its event id), stock for what a line
received, an exception for what is over or unexpected, and the verdict for the dock; the ASN
fully received makes its receipt. The decisions are `inbound.receiving`'s. See docs/inbound.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from identifiers.epc import normalize_epc_hex
from inbound.receiving import (
    Asn,
    AsnLine,
    DeclaredPackage,
    Outcome,
    ScanSeen,
    Tally,
    fully_received,
    line_status,
    receipt_number,
    reconcile,
)
from orders.scan_keys import ScanKeys

if TYPE_CHECKING:
    from ingest_service.orders.changes import Changes
    from ingest_service.orders.matcher import NewScan

RECEIVING = ("submitted", "received")  # an ASN in another status at a door is not counted

LINES = """
SELECT l.asn_id, l.po_line_no, pl.sku, p.gtin, pl.quantity AS ordered, l.quantity AS shipped
FROM asn_lines l
JOIN po_lines pl ON pl.po_id = l.po_id AND pl.line_no = l.po_line_no
JOIN products p ON p.sku = pl.sku
WHERE l.asn_id = ANY(%(ids)s) ORDER BY l.asn_id, l.po_line_no
"""
PACKAGES = """
SELECT asn_id, sscc, epc, po_line_no, quantity FROM asn_packages
WHERE asn_id = ANY(%(ids)s) ORDER BY asn_id, sscc
"""
# Per line, everything counted for it so far; and what must not count again: the packages'
# SSCCs and the tags' EPCs.
SCANNED = """
SELECT asn_id, po_line_no, sum(quantity)::int AS n FROM asn_receipts
WHERE asn_id = ANY(%(ids)s) AND po_line_no IS NOT NULL GROUP BY asn_id, po_line_no
"""
SEEN = """
SELECT r.asn_id, r.sscc, s.code FROM asn_receipts r
LEFT JOIN scans s ON s.event_id = r.event_id AND s.code_kind = 'epc'
WHERE r.asn_id = ANY(%(ids)s) AND (r.sscc IS NOT NULL OR s.code IS NOT NULL)
"""
INSERT_RECEIPT = """
INSERT INTO receipts (number, asn_id, status, lines, completed_by)
VALUES (%s, %s, %s, %s, %s) ON CONFLICT (asn_id) DO NOTHING
"""
INSERT_EXCEPTION = """
INSERT INTO exceptions (kind, summary, sku, evidence_event_id, opened_by, dedup_key, asn_id)
VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dedup_key) DO NOTHING
"""


def build_asns(
    numbers: Mapping[int, str], lines: Iterable[dict[str, Any]],
    packages: Iterable[dict[str, Any]],
) -> dict[int, Asn]:  # fmt: skip
    """ASNs for the pure core from the rows of LINES and PACKAGES."""
    by_line: dict[int, list[AsnLine]] = defaultdict(list)
    by_package: dict[int, list[DeclaredPackage]] = defaultdict(list)
    for r in lines:
        by_line[r["asn_id"]].append(
            AsnLine(r["po_line_no"], r["sku"], r["gtin"], r["ordered"], r["shipped"])
        )
    for r in packages:
        by_package[r["asn_id"]].append(
            DeclaredPackage(r["sscc"], r["epc"], r["po_line_no"], r["quantity"])
        )
    return {i: Asn(n, tuple(by_line[i]), tuple(by_package[i])) for i, n in numbers.items()}


def build_tallies(
    ids: Iterable[int], scanned: Iterable[dict[str, Any]], seen: Iterable[dict[str, Any]]
) -> dict[int, Tally]:
    """What each ASN counted so far, from the rows of SCANNED and SEEN."""
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    keys: dict[int, set[str]] = defaultdict(set)
    for r in scanned:
        counts[r["asn_id"]][r["po_line_no"]] = r["n"]
    for r in seen:
        keys[r["asn_id"]].update(
            k for k in (r["sscc"], normalize_epc_hex(r["code"]) if r["code"] else None) if k
        )
    return {i: Tally(MappingProxyType(counts[i]), frozenset(keys[i])) for i in ids}


def receipt_lines(asn: Asn, tally: Tally) -> Jsonb:
    return Jsonb([s.as_json() for s in line_status(asn, tally)])


@dataclass
class _Receiving:
    asn: Asn
    tally: Tally
    status: str
    touched: bool = False
    completed_by: str = ""


@dataclass
class InboundDoors:
    """The ASNs at the doors a batch was scanned at, locked, and what their scans counted."""

    doors: dict[tuple[str, str], int] = field(default_factory=dict)
    asns: dict[int, _Receiving] = field(default_factory=dict)
    receipts: list[tuple[Any, ...]] = field(default_factory=list)
    exceptions: list[tuple[Any, ...]] = field(default_factory=list)

    @classmethod
    def load(cls, conn: psycopg.Connection[Any], scans: Sequence[NewScan]) -> InboundDoors:
        db = cls()
        doors = sorted({(s.site, s.door) for s in scans if s.door and s.stage == "receive"})
        if not doors:
            return db
        cur = conn.cursor(row_factory=dict_row)
        locked: dict[int, dict[str, Any]] = {}
        while True:  # lock the doors' ASNs, then read the doors again: one may have been closed
            cur.execute(
                "SELECT site, door, asn_id FROM dock_doors WHERE asn_id IS NOT NULL AND"
                " (site, door) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                ([s for s, _ in doors], [d for _, d in doors]),
            )
            found = {(r["site"], r["door"]): r["asn_id"] for r in cur.fetchall()}
            wanted = sorted(set(found.values()) - set(locked))
            if not wanted:
                break
            cur.execute(
                "SELECT id, number, status FROM asns WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                (wanted,),
            )
            locked.update({r["id"]: r for r in cur.fetchall()})
        ids = sorted(i for i, r in locked.items() if r["status"] in RECEIVING)
        db.doors = {door: i for door, i in found.items() if i in ids}
        if not ids:
            return db
        numbers = {i: locked[i]["number"] for i in ids}
        asns = build_asns(numbers, cur.execute(LINES, {"ids": ids}).fetchall(),
                          cur.execute(PACKAGES, {"ids": ids}).fetchall())  # fmt: skip
        tallies = build_tallies(ids, cur.execute(SCANNED, {"ids": ids}).fetchall(),
                                cur.execute(SEEN, {"ids": ids}).fetchall())  # fmt: skip
        db.asns = {i: _Receiving(asns[i], tallies[i], locked[i]["status"]) for i in ids}
        return db

    def takes(self, scan: NewScan) -> bool:
        """A receive-stage scan at a door receiving an ASN."""
        return scan.stage == "receive" and (scan.site, scan.door or "") in self.doors

    def reconcile(
        self, scan: NewScan, k: ScanKeys, sku: str | None, changes: Changes
    ) -> tuple[str, str, str | None]:
        """Count one scan; (verdict, message, the declared package's SSCC)."""
        asn_id = self.doors[(scan.site, scan.door or "")]
        state = self.asns[asn_id]
        seen = ScanSeen(code=scan.code, sscc=k.sscc, epc=k.epc, gtin=k.gtin, sku=sku)
        r = reconcile(state.asn, state.tally, seen)
        state.tally = state.tally.after(r)
        match_kind = "package" if r.sscc else "product" if r.sku else "unmatched"
        changes.outcomes.append(
            (scan.event_id, scan.site, scan.gateway, scan.door, scan.station, match_kind,
             None, None, r.sku, r.verdict.value, r.message)
        )  # fmt: skip
        if r.outcome is Outcome.REPEAT:
            return r.verdict.value, r.message, r.sscc
        state.touched, state.completed_by = True, scan.actor
        self.receipts.append(
            (scan.event_id, asn_id, scan.time, scan.site, scan.door, r.po_line_no, r.sku,
             r.sscc or (k.sscc if r.outcome is Outcome.UNEXPECTED else None), r.quantity,
             r.outcome.value, scan.actor)
        )  # fmt: skip
        if r.po_line_no is not None and r.sku is not None:  # expected or over: on the shelf
            changes.movements.append(
                (r.sku, scan.site, r.quantity, "receipt", scan.event_id, None, scan.actor)
            )
        if r.exception is not None:
            self.exceptions.append(
                (r.exception, r.message, r.sku, scan.event_id, f"rule:{r.exception}",
                 f"{r.exception}:{scan.event_id}", asn_id)
            )  # fmt: skip
        return r.verdict.value, r.message, r.sscc

    def write(self, conn: psycopg.Connection[Any]) -> None:
        """The receipts rows and exceptions; an ASN now fully received gets its receipt."""
        with conn.cursor() as cur:
            if self.receipts:
                cur.executemany(
                    "INSERT INTO asn_receipts (event_id, asn_id, at, site, door, po_line_no,"
                    " sku, sscc, quantity, outcome, actor)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    self.receipts,
                )
            if self.exceptions:
                cur.executemany(INSERT_EXCEPTION, self.exceptions)
            for asn_id, state in self.asns.items():
                if not state.touched:
                    continue
                lines = receipt_lines(state.asn, state.tally)
                if state.status == "received":  # later scans (an extra unit) show on it
                    cur.execute("UPDATE receipts SET lines = %s WHERE asn_id = %s",
                                (lines, asn_id))  # fmt: skip
                elif fully_received(state.asn, state.tally):
                    cur.execute(
                        "UPDATE asns SET status = 'received', received_at = now() WHERE id = %s",
                        (asn_id,),
                    )
                    number = receipt_number(state.asn.number)
                    row = (number, asn_id, "complete", lines, state.completed_by)
                    cur.execute(INSERT_RECEIPT, row)
                    state.status = "received"
