"""The query every report takes (a date range, filters, the file format) and time buckets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from psycopg import sql
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest_service.storage import StorageMode

DEFAULT_SPAN = timedelta(days=7)
MAX_SPAN = timedelta(days=366)
Format = Literal["json", "csv", "xlsx"]
# Buckets start at UTC midnight: days in every report are UTC days.
_ORIGIN = "2000-01-01T00:00:00Z"


class ReportQuery(BaseModel):
    """`from <= time < to`; filters a report does not know are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: AwareDatetime | None = Field(None, alias="from", description="default: to - 7 days")
    end: AwareDatetime | None = Field(None, alias="to", description="default: now")
    format: Format = Field("json", description="json, or a file: csv (UTF-8) or xlsx")


class SiteQuery(ReportQuery):
    site: str | None = Field(None, description="the origin site (orders) or the scan's site")


class DoorQuery(SiteQuery):
    door: str | None = Field(None, description="a dock door, e.g. door-3 (with site: that site's)")


class StagesQuery(DoorQuery):
    group: Literal["day", "site", "door"] = Field(
        "day", description="day the stage ended (UTC), the order's origin site, or its loading door"
    )


class VehiclesQuery(ReportQuery):
    vehicle: str | None = Field(None, description="one vehicle's id")


@dataclass(frozen=True, slots=True)
class Range:
    start: datetime
    end: datetime

    def label(self) -> str:
        return f"{self.start:%Y%m%d}-{self.end:%Y%m%d}"


def resolve_range(query: ReportQuery, now: datetime | None = None) -> Range:
    """The range asked for, with defaults; a ValueError says what to change."""
    end = query.end or now or datetime.now(UTC)
    start = query.start or end - DEFAULT_SPAN
    if start >= end:
        raise ValueError(f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    if end - start > MAX_SPAN:
        raise ValueError(f"a report covers at most {MAX_SPAN.days} days: narrow from/to")
    return Range(start, end)


def bucket(mode: StorageMode, width: str, column: str) -> sql.Composed:
    """`column` floored to `width` (e.g. '1 hour') from UTC midnight, as timestamptz."""
    fn = "time_bucket" if mode.timescale else "date_bin"
    return sql.SQL("{}({}::interval, {}, {}::timestamptz)").format(
        sql.SQL(fn), sql.Literal(width), sql.SQL(column), sql.Literal(_ORIGIN)
    )


def utc_day(mode: StorageMode, column: str) -> sql.Composed:
    """The UTC date `column` falls on."""
    return sql.SQL("({} AT TIME ZONE 'UTC')::date").format(bucket(mode, "1 day", column))
