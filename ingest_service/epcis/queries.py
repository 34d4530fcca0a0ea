"""Read what EPCIS events are made of: matched scans, ASN receipts, order milestones.

Each query returns (time, key, row) in (time, key) order, the key a UUID (the scan's event
id; for a milestone a UUID made from its order event id), so three sources page as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from epcis import MilestoneRow, OrderRef, Package, ReceiptRow, ScanRow
from epcis.vocabulary import MILESTONE_STEPS

Keyed = tuple[datetime, UUID, Any]


@dataclass(frozen=True, slots=True)
class Window:
    """What to read: every bound given narrows it; `after` is the last (time, key) seen."""

    start: datetime | None = None
    end: datetime | None = None
    order: str | None = None
    asn: str | None = None
    after: tuple[datetime, UUID] | None = None
    limit: int = 1000


# Every package of the order, as [{"sscc": ..., "epc": ...}] in label order.
_PACKAGES = sql.SQL(
    "coalesce((SELECT json_agg(json_build_object('sscc', pk.sscc, 'epc', pk.epc) ORDER BY pk.id)"
    " FROM packages pk WHERE pk.order_id = ord.id), '[]'::json)"
)

# Accepted scans only: a refused load stays an exception, it did not happen. A scan counted
# against an ASN is a receipt (below), not a plain scan.
_SCANS = sql.SQL(
    "SELECT s.time AS t, s.event_id AS k, s.event_id, s.ingested_at, s.site, s.door,"
    " s.station, s.stage, s.code, s.code_kind, o.match_kind, pr.gtin, ord.number, ord.type,"
    " p.sscc, p.epc, p.loaded_trip, {packages} AS order_packages"
    " FROM scans s JOIN scan_outcomes o ON o.event_id = s.event_id"
    " LEFT JOIN orders ord ON ord.id = o.order_id"
    " LEFT JOIN packages p ON p.id = o.package_id"
    " LEFT JOIN products pr ON pr.sku = o.sku"
    " WHERE o.match_kind IN ('package', 'order', 'product') AND o.verdict = 'accepted'"
    " AND NOT EXISTS (SELECT 1 FROM asn_receipts r WHERE r.event_id = s.event_id)"
).format(packages=_PACKAGES)
# Expected and over-received items; an unexpected one is on no line of the ASN.
_RECEIPTS = sql.SQL(
    "SELECT r.at AS t, r.event_id AS k, r.event_id, r.site, r.door, r.quantity, r.sscc,"
    " ap.epc, pr.gtin, a.number AS asn, po.number AS po"
    " FROM asn_receipts r JOIN asns a ON a.id = r.asn_id"
    " JOIN purchase_orders po ON po.id = a.po_id"
    " LEFT JOIN asn_packages ap ON ap.asn_id = r.asn_id AND ap.sscc = r.sscc"
    " LEFT JOIN products pr ON pr.sku = r.sku"
    " WHERE r.outcome IN ('expected', 'over')"
)
_MILESTONES = sql.SQL(
    "SELECT e.at AS t, md5('order_event:' || e.id)::uuid AS k, e.id, e.to_state, ord.number,"
    " ord.type, ord.origin_site, coalesce(d.lat, ord.dest_lat) AS lat,"
    " coalesce(d.lon, ord.dest_lon) AS lon, {packages} AS packages"
    " FROM order_events e JOIN orders ord ON ord.id = e.order_id"
    " LEFT JOIN deliveries d ON d.order_id = ord.id AND e.to_state = 'delivered'"
    " WHERE e.kind = 'state' AND e.to_state = ANY(%s)"
).format(packages=_PACKAGES)


async def _page(
    conn: AsyncConnection[Any],
    base: sql.Composed | sql.SQL,
    params: list[Any],
    w: Window,
    *,
    time: str,
    key: str,
    extra: Sequence[tuple[str, Any]],
) -> list[dict[str, Any]]:
    clauses: list[sql.Composable] = []
    for clause, value in (
        (f"{time} >= %s", w.start),
        (f"{time} < %s", w.end),
        *extra,
    ):
        if value is not None:
            clauses.append(sql.SQL(" AND " + clause))  # type: ignore[arg-type]  # constants
            params.append(value)
    if w.after is not None:
        clauses.append(sql.SQL(f" AND ({time}, {key}) > (%s, %s)"))  # type: ignore[arg-type]
        params.extend(w.after)
    query = sql.Composed([base, *clauses, sql.SQL(f" ORDER BY {time}, {key} LIMIT %s")])  # type: ignore[arg-type]
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, [*params, w.limit + 1])
    return await cur.fetchall()


def _packages(items: list[dict[str, Any]]) -> tuple[Package, ...]:
    return tuple(Package(sscc=i["sscc"], epc=i["epc"]) for i in items)


async def scans(conn: AsyncConnection[Any], w: Window) -> list[Keyed]:
    if w.asn is not None:
        return []  # scans are not tied to an ASN; receipts are
    rows = await _page(
        conn, _SCANS, [], w, time="s.time", key="s.event_id", extra=[("ord.number = %s", w.order)]
    )
    out: list[Keyed] = []
    for r in rows:
        if r["match_kind"] == "package":
            packages: tuple[Package, ...] = (Package(r["sscc"], r["epc"]),)
        elif r["match_kind"] == "order":
            packages = _packages(r["order_packages"])
        else:
            packages = ()
        loaded = r["loaded_trip"] if r["stage"] == "dispatch" and r["sscc"] else None
        row = ScanRow(
            event_id=r["event_id"],
            time=r["t"],
            recorded_at=r["ingested_at"],
            site=r["site"],
            door=r["door"],
            station=r["station"],
            stage=r["stage"],
            code=r["code"],
            code_kind=r["code_kind"],
            packages=packages,
            gtin=r["gtin"] if r["match_kind"] == "product" else None,
            order=OrderRef(r["number"], r["type"]) if r["number"] else None,
            loaded_trip=loaded,
        )
        out.append((r["t"], r["k"], row))
    return out


async def receipts(conn: AsyncConnection[Any], w: Window) -> list[Keyed]:
    if w.order is not None:
        return []  # a receipt is against an ASN, not one of our orders
    rows = await _page(
        conn, _RECEIPTS, [], w, time="r.at", key="r.event_id", extra=[("a.number = %s", w.asn)]
    )
    return [
        (
            r["t"],
            r["k"],
            ReceiptRow(
                event_id=r["event_id"],
                time=r["t"],
                site=r["site"],
                door=r["door"],
                asn=r["asn"],
                po=r["po"],
                quantity=r["quantity"],
                sscc=r["sscc"],
                sscc_epc=r["epc"],
                gtin=r["gtin"],
            ),
        )
        for r in rows
    ]


async def milestones(conn: AsyncConnection[Any], w: Window) -> list[Keyed]:
    if w.asn is not None:
        return []
    key = "md5('order_event:' || e.id)::uuid"
    states = list(MILESTONE_STEPS)
    extra = [("ord.number = %s", w.order)]
    rows = await _page(conn, _MILESTONES, [states], w, time="e.at", key=key, extra=extra)
    return [
        (
            r["t"],
            r["k"],
            MilestoneRow(
                id=r["id"],
                time=r["t"],
                order=OrderRef(r["number"], r["type"]),
                state=r["to_state"],
                site=r["origin_site"],
                packages=_packages(r["packages"]),
                lat=r["lat"],
                lon=r["lon"],
            ),
        )
        for r in rows
    ]


async def order_exists(conn: AsyncConnection[Any], number: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM orders WHERE number = %s", (number,))
    return await cur.fetchone() is not None


async def asn_exists(conn: AsyncConnection[Any], number: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM asns WHERE number = %s", (number,))
    return await cur.fetchone() is not None
