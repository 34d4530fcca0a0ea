"""Analytics: stage durations, on-time rate, exceptions, door throughput, vehicle distance and
stop dwell, as JSON or as a CSV/XLSX download (`?format=`), over `from <= time < to`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from psycopg import AsyncConnection
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ingest_service.analytics import (
    XLSX,
    ExceptionsReport,
    OnTimeReport,
    Range,
    ReportQuery,
    Sheet,
    StagesReport,
    ThroughputReport,
    VehiclesReport,
    exceptions_report,
    on_time_report,
    resolve_range,
    stages_report,
    throughput_report,
    to_csv,
    to_xlsx,
    vehicles_report,
)
from ingest_service.analytics.query import DoorQuery, SiteQuery, StagesQuery, VehiclesQuery
from ingest_service.auth import ModeDep, PoolDep, Role, requires

router = APIRouter(prefix="/analytics", tags=["analytics"])
READERS = requires(Role.DISPATCHER, Role.VIEWER)
# One snapshot per report: its tables agree with each other.
SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class _Tabular(Protocol):
    def sheets(self) -> list[Sheet]: ...


def _span(query: ReportQuery) -> Range:
    try:
        return resolve_range(query)
    except ValueError as err:
        raise HTTPException(422, str(err)) from err


async def _run(
    pool: PoolDep,
    read: Callable[[AsyncConnection[Any]], Awaitable[BaseModel]],
) -> Any:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(SNAPSHOT)
        return await read(conn)


async def _answer(name: str, query: ReportQuery, span: Range, report: Any) -> Any:
    """JSON as it is, or the report's first table as CSV / every table as an XLSX sheet."""
    if query.format == "json":
        return report
    tabular: _Tabular = report
    filename = f"analytics-{name}-{span.label()}.{query.format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if query.format == "csv":
        body = to_csv(tabular.sheets()[0])
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    body = await run_in_threadpool(to_xlsx, tabular.sheets())
    return Response(body, media_type=XLSX, headers=headers)


_FILES = {
    200: {
        "content": {"text/csv": {}, XLSX: {}},
        "description": "JSON, or with `format=csv|xlsx` a file to save (Content-Disposition)",
    }
}


@router.get(
    "/stages",
    dependencies=[Depends(READERS)],
    response_model=StagesReport,
    responses=_FILES,  # type: ignore[arg-type]
)
async def stages(pool: PoolDep, query: Annotated[StagesQuery, Query()]) -> Any:
    """Minutes in each stage (created, picking, packed, loaded, in_transit, and total created →
    delivered): count, p50, p90 and mean per group, for stages that ended in the range."""
    span = _span(query)
    report = await _run(
        pool,
        lambda conn: stages_report(
            conn, span=span, group=query.group, site=query.site, door=query.door
        ),
    )
    return await _answer("stages", query, span, report)


@router.get(
    "/on-time",
    dependencies=[Depends(READERS)],
    response_model=OnTimeReport,
    responses=_FILES,  # type: ignore[arg-type]
)
async def on_time(pool: PoolDep, query: Annotated[SiteQuery, Query()]) -> Any:
    """Orders delivered in the range, per UTC day: on time when delivered at or before the
    promised window's end; orders without a window are counted apart and not rated."""
    span = _span(query)
    report = await _run(pool, lambda conn: on_time_report(conn, span=span, site=query.site))
    return await _answer("on-time", query, span, report)


@router.get(
    "/exceptions",
    dependencies=[Depends(READERS)],
    response_model=ExceptionsReport,
    responses=_FILES,  # type: ignore[arg-type]
)
async def exceptions(pool: PoolDep, mode: ModeDep, query: Annotated[SiteQuery, Query()]) -> Any:
    """Exceptions opened in the range, by kind and by UTC day."""
    span = _span(query)
    report = await _run(
        pool, lambda conn: exceptions_report(conn, mode, span=span, site=query.site)
    )
    return await _answer("exceptions", query, span, report)


@router.get(
    "/throughput",
    dependencies=[Depends(READERS)],
    response_model=ThroughputReport,
    responses=_FILES,  # type: ignore[arg-type]
)
async def throughput(pool: PoolDep, mode: ModeDep, query: Annotated[DoorQuery, Query()]) -> Any:
    """Accepted scans per site, door and hour (UTC hour starts)."""
    span = _span(query)
    report = await _run(
        pool,
        lambda conn: throughput_report(conn, mode, span=span, site=query.site, door=query.door),
    )
    return await _answer("throughput", query, span, report)


@router.get(
    "/vehicles",
    dependencies=[Depends(READERS)],
    response_model=VehiclesReport,
    responses=_FILES,  # type: ignore[arg-type]
)
async def vehicles(pool: PoolDep, mode: ModeDep, query: Annotated[VehiclesQuery, Query()]) -> Any:
    """Distance per vehicle and UTC day (great-circle legs between consecutive fixes) and
    each stop arrived at in the range with its dwell (arrival → exit, or → last delivery)."""
    span = _span(query)
    report = await _run(
        pool, lambda conn: vehicles_report(conn, mode, span=span, vehicle=query.vehicle)
    )
    return await _answer("vehicles", query, span, report)
