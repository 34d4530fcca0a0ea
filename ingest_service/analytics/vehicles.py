"""Vehicles: distance driven per day, and how long they stood at each stop.

Distance is summed in SQL: each fix of the vehicle's trackers (those assigned to it now, as
for its trail: docs/live-map.md) is paired with the previous one in the range by a window
function, and the leg's haversine on the mean-radius sphere (`analytics.geo`, the same
formula and radius) counts on the UTC day of its later fix.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from pydantic import BaseModel, Field

from analytics import EARTH_RADIUS_M, distribution, dwell_end
from ingest_service.storage import StorageMode

from .files import Sheet
from .query import Range, utc_day

_DISTANCE = sql.SQL("""
WITH fixes AS (
    SELECT t.vehicle_id, p.time, p.lat, p.lon,
           lag(p.lat) OVER w AS prev_lat, lag(p.lon) OVER w AS prev_lon
    FROM trackers t
    JOIN positions p ON p.site = t.site AND p.gateway = t.gateway AND p.device = t.device
    WHERE p.time >= %(start)s AND p.time < %(end)s AND p.fix_quality > 0
      AND (%(vehicle)s::text IS NULL OR t.vehicle_id = %(vehicle)s)
    WINDOW w AS (PARTITION BY t.vehicle_id ORDER BY p.time, p.gateway, p.device, p.seq)
)
SELECT vehicle_id, {day} AS day, count(*) AS fixes,
       coalesce(sum(2 * {radius} * asin(sqrt(least(1.0,
           sin(radians(lat - prev_lat) / 2) ^ 2
           + cos(radians(prev_lat)) * cos(radians(lat)) * sin(radians(lon - prev_lon) / 2) ^ 2
       )))) FILTER (WHERE prev_lat IS NOT NULL), 0) AS metres
FROM fixes GROUP BY 1, 2 ORDER BY 1, 2
""")
# A stop's dwell ends at the vehicle's first exit from the stop's fence after arriving, or
# else at the last delivery of the stop's orders (analytics.stops).
_STOPS = """
SELECT ts.trip_id, t.vehicle_id, ts.seq, ts.arrived_at,
       (SELECT min(ft.at) FROM fence_transitions ft
        WHERE ft.vehicle_id = t.vehicle_id AND ft.fence_id = ts.fence_id
          AND ft.kind = 'exited' AND ft.at >= ts.arrived_at) AS exited_at,
       (SELECT max(d.delivered_at) FROM orders o JOIN deliveries d ON d.order_id = o.id
        WHERE o.trip_id = ts.trip_id AND o.stop_seq = ts.seq) AS delivered_at
FROM trip_stops ts JOIN trips t ON t.id = ts.trip_id
WHERE ts.arrived_at >= %(start)s AND ts.arrived_at < %(end)s
  AND (%(vehicle)s::text IS NULL OR t.vehicle_id = %(vehicle)s)
ORDER BY t.vehicle_id, ts.arrived_at, ts.trip_id, ts.seq
"""


class StopRow(BaseModel):
    trip_id: str
    vehicle_id: str | None
    seq: int
    arrived_at: datetime
    left_at: datetime | None = Field(description="null: still there, as far as we know")
    left_by: Literal["exit", "delivery"] | None
    dwell_min: float | None


class VehicleDayRow(BaseModel):
    vehicle_id: str | None
    day: date = Field(description="UTC")
    distance_km: float
    fixes: int
    stops: int = Field(description="stops arrived at that day")
    dwell_p50_min: float | None
    dwell_p90_min: float | None
    dwell_mean_min: float | None


class VehiclesReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    rows: list[VehicleDayRow]
    stops: list[StopRow]

    def sheets(self) -> list[Sheet]:
        return [
            Sheet.of("vehicles", VehicleDayRow, self.rows),
            Sheet.of("stops", StopRow, self.stops),
        ]


async def _stops(conn: AsyncConnection[Any], params: dict[str, Any]) -> list[StopRow]:
    cur = await conn.execute(_STOPS, params)
    stops = []
    for trip_id, vehicle_id, seq, arrived_at, exited_at, delivered_at in await cur.fetchall():
        end = dwell_end(arrived_at, exited_at, delivered_at)
        minutes = None if end is None else round((end.at - arrived_at).total_seconds() / 60, 2)
        stops.append(StopRow(trip_id=trip_id, vehicle_id=vehicle_id, seq=seq,
                             arrived_at=arrived_at, left_at=end.at if end else None,
                             left_by=end.source if end else None, dwell_min=minutes))  # fmt: skip
    return stops


async def vehicles_report(
    conn: AsyncConnection[Any], mode: StorageMode, *, span: Range, vehicle: str | None = None
) -> VehiclesReport:
    params = {"start": span.start, "end": span.end, "vehicle": vehicle}
    query = _DISTANCE.format(day=utc_day(mode, "time"), radius=sql.Literal(EARTH_RADIUS_M))
    cur = await conn.execute(query, params)
    driven = {(v, d): (metres, fixes) for v, d, fixes, metres in await cur.fetchall()}
    stops = await _stops(conn, params)
    dwells: dict[tuple[str | None, date], list[float]] = defaultdict(list)
    arrivals: dict[tuple[str | None, date], int] = defaultdict(int)
    for s in stops:
        key = (s.vehicle_id, s.arrived_at.astimezone(UTC).date())
        arrivals[key] += 1
        if s.dwell_min is not None:
            dwells[key].append(s.dwell_min)
    rows = []
    for key in sorted(driven.keys() | arrivals.keys(), key=lambda k: (k[0] or "", k[1])):
        metres, fixes = driven.get(key, (0.0, 0))
        d = distribution(dwells.get(key, [])).rounded()
        km = round(metres / 1000, 3)
        rows.append(VehicleDayRow(vehicle_id=key[0], day=key[1], distance_km=km, fixes=fixes,
                                  stops=arrivals.get(key, 0), dwell_p50_min=d.p50,
                                  dwell_p90_min=d.p90, dwell_mean_min=d.mean))  # fmt: skip
    return VehiclesReport(start=span.start, end=span.end, rows=rows, stops=stops)
