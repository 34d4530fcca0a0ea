"""Accepted scans per dock door and hour: how fast each door moves goods."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from pydantic import BaseModel, Field

from ingest_service.storage import StorageMode

from .files import Sheet
from .query import Range, bucket

# `decided_at` is when ingest judged the scan, within a second of the read.
_PER_HOUR = sql.SQL("""
SELECT so.site, so.door, {hour} AS hour, count(*)
FROM scan_outcomes so
WHERE so.verdict = 'accepted' AND so.door IS NOT NULL
  AND so.decided_at >= %(start)s AND so.decided_at < %(end)s
  AND (%(site)s::text IS NULL OR so.site = %(site)s)
  AND (%(door)s::text IS NULL OR so.door = %(door)s)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
""")


class HourRow(BaseModel):
    site: str
    door: str
    hour: datetime = Field(description="the hour's start (UTC)")
    accepted: int


class DoorTotal(BaseModel):
    site: str
    door: str
    accepted: int
    active_hours: int = Field(description="hours with at least one accepted scan")
    peak_per_hour: int


class ThroughputReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    doors: list[DoorTotal]
    rows: list[HourRow]

    def sheets(self) -> list[Sheet]:
        return [
            Sheet.of("throughput", HourRow, self.rows),
            Sheet.of("doors", DoorTotal, self.doors),
        ]


async def throughput_report(
    conn: AsyncConnection[Any],
    mode: StorageMode,
    *,
    span: Range,
    site: str | None = None,
    door: str | None = None,
) -> ThroughputReport:
    query = _PER_HOUR.format(hour=bucket(mode, "1 hour", "so.decided_at"))
    params = {"start": span.start, "end": span.end, "site": site, "door": door}
    cur = await conn.execute(query, params)
    rows = [HourRow(site=s, door=d, hour=h, accepted=n) for s, d, h, n in await cur.fetchall()]
    hours: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in rows:
        hours[(r.site, r.door)].append(r.accepted)
    doors = [
        DoorTotal(site=s, door=d, accepted=sum(n), active_hours=len(n), peak_per_hour=max(n))
        for (s, d), n in sorted(hours.items())
    ]
    return ThroughputReport(start=span.start, end=span.end, doors=doors, rows=rows)
