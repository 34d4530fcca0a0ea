"""Time in each stage per order, as distributions per day, origin site or loading door."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, Literal

from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from analytics import OrderEvent, distribution, stage_durations
from analytics.stages import STAGE_NAMES

from .files import Sheet
from .query import Range

# Orders with a move in the range (a stage can only end with one), all their moves, and the
# door of their first loading scan (site/door, as the live stream names doors).
_EVENTS = """
WITH touched AS (
    SELECT DISTINCT e.order_id FROM order_events e
    WHERE e.kind IN ('created', 'state') AND e.at >= %(start)s AND e.at < %(end)s
), loading AS (
    SELECT DISTINCT ON (e.order_id) e.order_id, so.site || '/' || so.door AS door, so.door AS name
    FROM order_events e JOIN scan_outcomes so ON so.event_id = e.evidence_event_id
    WHERE e.kind = 'loaded' AND so.door IS NOT NULL
      AND e.order_id IN (SELECT order_id FROM touched)
    ORDER BY e.order_id, e.at, e.id
)
SELECT o.id, o.origin_site, l.door, e.at, e.to_state
FROM touched t
JOIN orders o ON o.id = t.order_id
LEFT JOIN loading l ON l.order_id = o.id
JOIN order_events e ON e.order_id = o.id AND e.kind IN ('created', 'state')
WHERE (%(site)s::text IS NULL OR o.origin_site = %(site)s)
  AND (%(door)s::text IS NULL OR l.name = %(door)s)
ORDER BY o.id, e.at, e.id
"""

Group = Literal["day", "site", "door"]


class StageRow(BaseModel):
    group: str | None = Field(description="the day (UTC), site or site/door; null: overall")
    stage: str
    count: int
    p50_min: float | None
    p90_min: float | None
    mean_min: float | None


class StagesReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    group: Group
    stages: list[str] = Field(description="in lifecycle order; `total` is created → delivered")
    orders: int = Field(description="orders with at least one stage ended in the range")
    overall: list[StageRow]
    rows: list[StageRow]

    def sheets(self) -> list[Sheet]:
        return [
            Sheet.of("stages", StageRow, self.rows),
            Sheet.of("overall", StageRow, self.overall),
        ]


def _rows(group: str | None, minutes: dict[str, list[float]]) -> list[StageRow]:
    out = []
    for stage in STAGE_NAMES:
        d = distribution(minutes.get(stage, [])).rounded()
        out.append(StageRow(group=group, stage=stage, count=d.count, p50_min=d.p50,
                            p90_min=d.p90, mean_min=d.mean))  # fmt: skip
    return out


async def stages_report(
    conn: AsyncConnection[Any],
    *,
    span: Range,
    group: Group = "day",
    site: str | None = None,
    door: str | None = None,
) -> StagesReport:
    """Each stage an order completed in the range counts once, in the day it ended."""
    params = {"start": span.start, "end": span.end, "site": site, "door": door}
    cur = await conn.execute(_EVENTS, params)
    by_group: dict[str | None, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    overall: dict[str, list[float]] = defaultdict(list)
    counted = 0
    for (_, origin, loading_door), rows in groupby(await cur.fetchall(), key=lambda r: r[:3]):
        events = [OrderEvent(at, state) for *_, at, state in rows]
        ended = [d for d in stage_durations(events) if span.start <= d.ended_at < span.end]
        counted += bool(ended)
        for d in ended:
            label = {
                "day": d.ended_at.astimezone(UTC).date().isoformat(),
                "site": origin,
                "door": loading_door,
            }[group]
            by_group[label][d.stage].append(d.minutes)
            overall[d.stage].append(d.minutes)
    rows = [
        row
        for label in sorted(by_group, key=lambda g: (g is None, g or ""))
        for row in _rows(label, by_group[label])
    ]
    return StagesReport(start=span.start, end=span.end, group=group, stages=list(STAGE_NAMES),
                        orders=counted, overall=_rows(None, overall), rows=rows)  # fmt: skip
