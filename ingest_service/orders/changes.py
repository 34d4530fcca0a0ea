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
from psycopg import sql
from psycopg.types.json import Jsonb

from ingest_service.inventory.low_stock import open_low_stock


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
        """One statement per table: arrays through unnest for updates, COPY for new rows (a
        scan is matched once, when first stored, so its outcome rows cannot exist yet)."""
        with conn.cursor() as cur:
            changed = [p for p in packages if p.changed]
            if changed:
                cur.execute(
                    "UPDATE packages p SET state = v.state, loaded_trip = v.trip,"
                    " loaded_at = v.at, updated_at = now()"
                    " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[])"
                    " AS v(id, state, trip, at) WHERE p.id = v.id",
                    ([p.id for p in changed], [p.state for p in changed],
                     [p.loaded_trip for p in changed], [p.loaded_at for p in changed]),
                )  # fmt: skip
            moved = [o for o in orders if o.changed]
            if moved:
                cur.execute(
                    "UPDATE orders o SET state = v.state, updated_at = now(),"
                    " version = o.version + 1 FROM unnest(%s::bigint[], %s::text[])"
                    " AS v(id, state) WHERE o.id = v.id",
                    ([o.id for o in moved], [o.state for o in moved]),
                )
            _copy(cur, "order_events", _EVENT_COLUMNS, self.events)
            for sku, location, delta, reason, event_id, order_id, actor in sorted(
                self.movements, key=lambda m: (m[0], m[1])
            ):  # sorted, so two workers take the stock rows' locks in the same order
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
            taken = {m[0] for m in self.movements if m[2] < 0}
            if taken:  # picks may take a product to its reorder point
                open_low_stock(conn, taken)
            if self.exceptions:
                cur.executemany(
                    "INSERT INTO exceptions (kind, summary, order_id, package_id, vehicle_id,"
                    " trip_id, sku, evidence_event_id, opened_by, dedup_key)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (dedup_key) DO NOTHING",
                    self.exceptions,
                )
            _copy(cur, "unmatched_scans", _UNMATCHED_COLUMNS, self.unmatched)
            _copy(cur, "scan_outcomes", _OUTCOME_COLUMNS, self.outcomes)


_EVENT_COLUMNS = (
    ("order_id", "int8"), ("package_id", "int8"), ("at", "timestamptz"), ("kind", "text"),
    ("from_state", "text"), ("to_state", "text"), ("trigger", "text"),
    ("evidence_event_id", "uuid"), ("read_point", "jsonb"), ("actor", "text"),
    ("detail", "jsonb"),
)  # fmt: skip
_UNMATCHED_COLUMNS = (
    ("event_id", "uuid"), ("seen_at", "timestamptz"), ("site", "text"), ("gateway", "text"),
    ("device", "text"), ("code", "text"), ("code_kind", "text"), ("symbology", "text"),
    ("door", "text"), ("station", "text"), ("stage", "text"), ("reason", "text"),
)  # fmt: skip
_OUTCOME_COLUMNS = (
    ("event_id", "uuid"), ("site", "text"), ("gateway", "text"), ("door", "text"),
    ("station", "text"), ("match_kind", "text"), ("order_id", "int8"), ("package_id", "int8"),
    ("sku", "text"), ("verdict", "text"), ("message", "text"),
)  # fmt: skip


def _copy(
    cur: psycopg.Cursor[Any], table: str, columns: tuple[tuple[str, str], ...], rows: list[Any]
) -> None:
    if not rows:
        return
    names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), names
    )
    with cur.copy(statement) as copy:
        copy.set_types([t for _, t in columns])
        for row in rows:
            copy.write_row(row)
