"""Load (and lock) what a batch of scans may name: packages, orders, products, dock doors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg import Cursor

from orders.dispatch import DoorAssignment
from orders.scan_keys import ScanKeys

from .changes import OrderRow, PackageRow

if TYPE_CHECKING:
    from .matcher import NewScan


@dataclass
class Loaded:
    orders: dict[int, OrderRow] = field(default_factory=dict)
    packages: dict[int, PackageRow] = field(default_factory=dict)
    by_sscc: dict[str, PackageRow] = field(default_factory=dict)
    by_epc: dict[str, PackageRow] = field(default_factory=dict)
    order_by_number: dict[str, OrderRow] = field(default_factory=dict)
    products: dict[str, tuple[str, str]] = field(default_factory=dict)  # gtin -> (sku, name)
    doors: dict[tuple[str, str], DoorAssignment] = field(default_factory=dict)

    def package_for(self, k: ScanKeys) -> PackageRow | None:
        """A package's own EPC first (a tag may be encoded any way), then its SSCC."""
        if k.epc and k.epc in self.by_epc:
            return self.by_epc[k.epc]
        if k.sscc:
            return self.by_sscc.get(k.sscc)
        return None


def load(
    cur: Cursor[dict[str, Any]], scans: Sequence[NewScan], keys: Mapping[UUID, ScanKeys]
) -> Loaded:
    db = Loaded()
    epcs = sorted({k.epc for k in keys.values() if k.epc})
    ssccs = sorted({k.sscc for k in keys.values() if k.sscc})
    labels = sorted({k.label for k in keys.values() if k.label})
    gtins = sorted({k.gtin for k in keys.values() if k.gtin})
    order_ids: set[int] = set()
    if epcs or ssccs:
        cur.execute(
            "SELECT order_id FROM packages WHERE epc = ANY(%s) OR sscc = ANY(%s)", (epcs, ssccs)
        )
        order_ids.update(r["order_id"] for r in cur.fetchall())
    if labels:
        cur.execute("SELECT id FROM orders WHERE number = ANY(%s)", (labels,))
        order_ids.update(r["id"] for r in cur.fetchall())
    if order_ids:
        ids = sorted(order_ids)
        cur.execute(
            "SELECT id, number, state, trip_id, origin_site FROM orders WHERE id = ANY(%s)"
            " ORDER BY id FOR UPDATE",
            (ids,),
        )
        for r in cur.fetchall():
            order = OrderRow(r["id"], r["number"], r["state"], r["trip_id"], r["origin_site"])
            db.orders[order.id] = order
            db.order_by_number[order.number] = order
        cur.execute(
            "SELECT id, order_id, sscc, epc, state, loaded_trip, loaded_at FROM packages"
            " WHERE order_id = ANY(%s) ORDER BY id FOR UPDATE",
            (ids,),
        )
        for r in cur.fetchall():
            package = PackageRow(**r)
            db.packages[package.id] = package
            db.by_sscc[package.sscc] = package
            if package.epc:
                db.by_epc[package.epc.upper()] = package
            db.orders[package.order_id].packages.append(package)
        cur.execute(
            "SELECT order_id, sku, quantity FROM order_lines WHERE order_id = ANY(%s)"
            " ORDER BY order_id, line_no",
            (ids,),
        )
        for r in cur.fetchall():
            db.orders[r["order_id"]].lines.append((r["sku"], r["quantity"]))
    if gtins:
        cur.execute("SELECT gtin, sku, name FROM products WHERE gtin = ANY(%s)", (gtins,))
        db.products = {r["gtin"]: (r["sku"], r["name"]) for r in cur.fetchall()}
    doors = sorted({(s.site, s.door) for s in scans if s.door})
    if doors:
        cur.execute(
            "SELECT d.site, d.door, d.trip_id, t.vehicle_id FROM dock_doors d"
            " LEFT JOIN trips t ON t.id = d.trip_id"
            " WHERE (d.site, d.door) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([s for s, _ in doors], [d for _, d in doors]),
        )
        for r in cur.fetchall():
            db.doors[(r["site"], r["door"])] = DoorAssignment(
                door=r["door"], trip=r["trip_id"], vehicle=r["vehicle_id"]
            )
    return db
