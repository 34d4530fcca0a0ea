"""Write decoded batches: binary COPY into a staging table, then insert what is new.

A redelivered event is skipped by `ON CONFLICT DO NOTHING` on its event_id, so the count of
rows inserted is the count stored and the rest are duplicates. Events and quarantined
messages of one consumer batch commit in one transaction: all of it is stored, or none of
it and the broker redelivers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from event_contract import DeviceStatus, PositionEvent, ScanEvent
from ingest_service.orders.matcher import NewScan
from ingest_service.tracking.rows import NewPosition

if TYPE_CHECKING:
    from ingest_service.orders.matcher import Outgoing, ScanMatcher
    from ingest_service.tracking import PositionTracker


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, postgres type for binary COPY)
    row: Callable[[str, str, Any], tuple[Any, ...]]  # (site, gateway, event) -> row

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


_EVENT_COLUMNS = (
    ("time", "timestamptz"),
    ("event_id", "uuid"),
    ("site", "text"),
    ("gateway", "text"),
    ("device", "text"),
    ("seq", "int8"),
)


def _position_row(site: str, gateway: str, e: PositionEvent) -> tuple[Any, ...]:
    return (
        e.device_time, e.event_id, site, gateway, e.device, e.seq,
        e.lat, e.lon, e.speed_mps, e.heading_deg, e.fix_quality, e.hdop, e.satellites,
        e.altitude_m, e.received_at,
    )  # fmt: skip


def _scan_row(site: str, gateway: str, e: ScanEvent) -> tuple[Any, ...]:
    rp = e.read_point
    return (
        e.device_time, e.event_id, site, gateway, e.device, e.seq,
        e.code, e.code_kind.value, e.symbology, e.antenna, e.rssi_dbm, e.read_count,
        rp.door, rp.station, e.stage.value if e.stage else None, e.received_at,
    )  # fmt: skip


def _status_row(site: str, gateway: str, e: DeviceStatus) -> tuple[Any, ...]:
    return (
        e.device_time, e.event_id, site, gateway, e.device, e.seq,
        e.state.value, e.detail, psycopg.types.json.Jsonb(e.counters), e.received_at,
    )  # fmt: skip


TABLES: dict[str, Table] = {
    "position": Table(
        "positions",
        (*_EVENT_COLUMNS, ("lat", "float8"), ("lon", "float8"), ("speed_mps", "float4"),
         ("heading_deg", "float4"), ("fix_quality", "int2"), ("hdop", "float4"),
         ("satellites", "int2"), ("altitude_m", "float4"), ("received_at", "timestamptz")),
        _position_row,
    ),
    "scan": Table(
        "scans",
        (*_EVENT_COLUMNS, ("code", "text"), ("code_kind", "text"), ("symbology", "text"),
         ("antenna", "int4"), ("rssi_dbm", "float4"), ("read_count", "int4"), ("door", "text"),
         ("station", "text"), ("stage", "text"), ("received_at", "timestamptz")),
        _scan_row,
    ),
    "status": Table(
        "device_status",
        (*_EVENT_COLUMNS, ("state", "text"), ("detail", "text"), ("counters", "jsonb"),
         ("received_at", "timestamptz")),
        _status_row,
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Quarantined:
    topic: str
    reason: str
    payload: bytes
    event_index: int | None = None


@dataclass
class WriteResult:
    stored: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    # Verdicts on the new scans, to publish once the transaction has committed.
    verdicts: list[Outgoing] = field(default_factory=list)
    # What tracking the new positions did (fence transitions, order moves, failures...).
    tracking: dict[str, int] = field(default_factory=dict)

    def merge(self, other: WriteResult) -> None:
        for mine, theirs in (
            (self.stored, other.stored),
            (self.duplicates, other.duplicates),
            (self.tracking, other.tracking),
        ):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        self.quarantined += other.quarantined
        self.verdicts.extend(other.verdicts)


def build_rows(events: Iterable[tuple[str, str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """COPY rows by event type from (site, gateway, event) triples. No I/O: callers may do
    this in another thread while the previous batch is being written."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for site, gateway, event in events:
        rows.setdefault(event.type, []).append(TABLES[event.type].row(site, gateway, event))
    return rows


# What order matching needs of each newly inserted scan, in NewScan's field order.
_NEW_SCAN_COLUMNS = (
    " RETURNING event_id, time, site, gateway, device, code, code_kind, symbology, door,"
    " station, stage"
)
# What tracking needs of each newly inserted position, in NewPosition's field order.
_NEW_POSITION_COLUMNS = (
    " RETURNING event_id, time, site, gateway, device, lat, lon, speed_mps, heading_deg, hdop"
)


class BatchWriter:
    """Owns one connection; call `write` from one thread at a time."""

    def __init__(
        self,
        conn: psycopg.Connection,
        matcher: ScanMatcher | None = None,
        tracker: PositionTracker | None = None,
    ):
        self.conn = conn
        self.matcher = matcher  # scans inserted for the first time are matched to orders
        self.tracker = tracker  # and positions move the orders their vehicle carries
        self._prepare()

    def _prepare(self) -> None:
        with self.conn.transaction():
            for table in TABLES.values():
                self.conn.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)"
                        " ON COMMIT DELETE ROWS"
                    ).format(sql.Identifier(f"stage_{table.name}"), sql.Identifier(table.name))
                )

    def write(
        self,
        events: Iterable[tuple[str, str, Any]],
        quarantined: Sequence[Quarantined] = (),
    ) -> WriteResult:
        """Store (site, gateway, event) triples and quarantine rows in one transaction."""
        return self.write_rows(build_rows(events), quarantined)

    def write_rows(
        self, rows: dict[str, list[tuple[Any, ...]]], quarantined: Sequence[Quarantined] = ()
    ) -> WriteResult:
        """Store rows from `build_rows` and quarantine rows in one transaction."""
        result = WriteResult()
        new: dict[str, list[tuple[Any, ...]]] = {}
        with self.conn.transaction(), self.conn.cursor() as cur:
            for event_type, batch in rows.items():
                table = TABLES[event_type]
                returning = self._returning(event_type)
                inserted = self._copy_insert(cur, table, batch, returning=returning)
                result.stored[table.name] = inserted
                result.duplicates[table.name] = len(batch) - inserted
                if returning and inserted:
                    new[event_type] = cur.fetchall()
            # Positions before scans: tracking locks vehicle rows, then orders; matching
            # locks orders. So every transaction takes vehicle rows before any order row.
            if self.tracker is not None and new.get("position"):
                positions = [NewPosition(*row) for row in new["position"]]
                result.tracking = dict(self.tracker.track(self.conn, positions))
            if self.matcher is not None and new.get("scan"):
                scans = [NewScan(*row) for row in new["scan"]]
                result.verdicts = self.matcher.match(self.conn, scans)
            if quarantined:
                with cur.copy(
                    "COPY quarantine (topic, reason, payload, event_index) FROM STDIN"
                    " (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["text", "text", "bytea", "int4"])
                    for q in quarantined:
                        copy.write_row((q.topic, q.reason, q.payload, q.event_index))
                result.quarantined = len(quarantined)
        return result

    def _returning(self, event_type: str) -> str:
        if event_type == "scan" and self.matcher is not None:
            return _NEW_SCAN_COLUMNS
        if event_type == "position" and self.tracker is not None:
            return _NEW_POSITION_COLUMNS
        return ""

    def _copy_insert(
        self, cur: psycopg.Cursor, table: Table, batch: list[tuple[Any, ...]], *, returning: str
    ) -> int:
        stage = sql.Identifier(f"stage_{table.name}")
        cols = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
        with cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, cols)
        ) as copy:
            copy.set_types([t for _, t in table.columns])
            for row in batch:
                copy.write_row(row)
        # clock_timestamp(), not now(): the time this batch is being committed, which is
        # what publish-to-store latency should be measured against.
        cur.execute(
            sql.SQL(
                "INSERT INTO {table} ({cols}, ingested_at) SELECT {cols}, clock_timestamp()"
                " FROM {stage} ON CONFLICT DO NOTHING{returning}"
            ).format(
                table=sql.Identifier(table.name),
                cols=cols,
                stage=stage,
                returning=sql.SQL(returning),  # type: ignore[arg-type]  # a constant above
            )
        )
        return cur.rowcount
