"""What matching a batch of scans changes, gathered in memory and written in a few statements.

The matcher decides scan by scan against rows it has locked; this collects the consequences
(package and order states, history rows, exceptions, stock movements, outcomes, unmatched
scans) so that a batch of thousands of scans costs a handful of round trips, not thousands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb


@dataclass
class PackageRow:
    id: int
    order_id: int
    sscc: str
    epc: str | None
    state: str
    loaded_trip: str | None
    loaded_at: datetime | None = None
    changed: bool = False


@dataclass
class OrderRow:
    id: int
    number: str
    state: str
    trip_id: str | None
    origin_site: str
    lines: list[tuple[str, int]] = field(default_factory=list)
    packages: list[PackageRow] = field(default_factory=list)
    changed: bool = False


@dataclass
class Changes:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    exceptions: list[tuple[Any, ...]] = field(default_factory=list)
    movements: list[tuple[Any, ...]] = field(default_factory=list)
    outcomes: list[tuple[Any, ...]] = field(default_factory=list)
    unmatched: list[tuple[Any, ...]] = field(default_factory=list)

    def event(
        self,
        order_id: int,
        kind: str,
        *,
        package_id: int | None = None,
        from_state: str | None = None,
        to_state: str | None = None,
        trigger: str | None = None,
        evidence: UUID | None = None,
        read_point: dict[str, Any] | None = None,
        actor: str,
        at: datetime,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            (order_id, package_id, at, kind, from_state, to_state, trigger, evidence,
             Jsonb(read_point) if read_point else None, actor, Jsonb(detail or {}))
        )  # fmt: skip

    def write(
        self, conn: psycopg.Connection[Any], orders: list[OrderRow], packages: list[PackageRow]
    ) -> None:
        with conn.cursor() as cur:
            changed_packages = [p for p in packages if p.changed]
            if changed_packages:
                cur.executemany(
                    "UPDATE packages SET state = %s, loaded_trip = %s, loaded_at = %s,"
                    " updated_at = now() WHERE id = %s",
                    [(p.state, p.loaded_trip, p.loaded_at, p.id) for p in changed_packages],
                )
            changed_orders = [o for o in orders if o.changed]
            if changed_orders:
                cur.executemany(
                    "UPDATE orders SET state = %s, updated_at = now(), version = version + 1"
                    " WHERE id = %s",
                    [(o.state, o.id) for o in changed_orders],
                )
            if self.events:
                cur.executemany(
                    "INSERT INTO order_events (order_id, package_id, at, kind, from_state,"
                    " to_state, trigger, evidence_event_id, read_point, actor, detail)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    self.events,
                )
            if self.movements:
                # Sorted, so two workers take the stock rows' locks in the same order.
                for sku, location, delta, reason, event_id, order_id, actor in sorted(
                    self.movements, key=lambda m: (m[0], m[1])
                ):
                    cur.execute(
                        "INSERT INTO stock (sku, location, quantity) VALUES (%s, %s, %s)"
                        " ON CONFLICT (sku, location)"
                        " DO UPDATE SET quantity = stock.quantity + EXCLUDED.quantity",
                        (sku, location, delta),
                    )
                    cur.execute(
                        "INSERT INTO stock_movements (sku, location, delta, reason, event_id,"
                        " order_id, actor) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (event_id, sku) WHERE event_id IS NOT NULL DO NOTHING",
                        (sku, location, delta, reason, event_id, order_id, actor),
                    )
            if self.exceptions:
                cur.executemany(
                    "INSERT INTO exceptions (kind, summary, order_id, package_id, vehicle_id,"
                    " trip_id, sku, evidence_event_id, opened_by, dedup_key)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (dedup_key) DO NOTHING",
                    self.exceptions,
                )
            if self.unmatched:
                cur.executemany(
                    "INSERT INTO unmatched_scans (event_id, seen_at, site, gateway, device, code,"
                    " code_kind, symbology, door, station, stage, reason)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    self.unmatched,
                )
            if self.outcomes:
                cur.executemany(
                    "INSERT INTO scan_outcomes (event_id, site, gateway, door, station,"
                    " match_kind, order_id, package_id, sku, verdict, message)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    self.outcomes,
                )
