"""GNSS fixes as stored: a filtered history, and the latest fix of every tracker."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest_service.auth import PoolDep, Role, requires

from . import Page, Window, fetch_page, model_columns

router = APIRouter(prefix="/positions", tags=["positions"])


class Position(BaseModel):
    time: datetime = Field(description="GNSS fix time")
    event_id: UUID
    site: str
    gateway: str
    device: str
    seq: int
    lat: float
    lon: float
    speed_mps: float | None
    heading_deg: float | None
    fix_quality: int
    hdop: float | None
    satellites: int | None
    altitude_m: float | None
    received_at: datetime
    ingested_at: datetime


class PositionFilter(Window):
    site: str | None = None
    gateway: str | None = None
    device: str | None = None


class LatestFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str | None = None
    gateway: str | None = None
    since: AwareDatetime | None = Field(
        None, description="leave out trackers whose last fix is older than this"
    )


@router.get("", dependencies=[Depends(requires(Role.DISPATCHER, Role.VIEWER))])
async def list_positions(
    pool: PoolDep, filters: Annotated[PositionFilter, Query()]
) -> Page[Position]:
    """Stored fixes, newest first."""
    return await fetch_page(
        pool,
        table="positions",
        model=Position,
        window=filters,
        equals={"site": filters.site, "gateway": filters.gateway, "device": filters.device},
    )


@router.get("/latest", dependencies=[Depends(requires(Role.DISPATCHER, Role.VIEWER, Role.DRIVER))])
async def latest_positions(
    pool: PoolDep, filters: Annotated[LatestFilter, Query()]
) -> list[Position]:
    """The newest fix of each (gateway, device): where every tracker is now."""
    where: list[sql.Composable] = []
    params: list[object] = []
    for column in ("site", "gateway"):
        if (value := getattr(filters, column)) is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if filters.since is not None:
        where.append(sql.SQL("time >= %s"))
        params.append(filters.since)
    # DISTINCT ON walks the (gateway, device, time DESC) index and keeps each group's first row.
    query = sql.SQL(
        "SELECT DISTINCT ON (gateway, device) {cols} FROM positions {where}"
        " ORDER BY gateway, device, time DESC"
    ).format(
        cols=model_columns(Position),
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
    )
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        return [Position.model_validate(r) for r in await cur.fetchall()]
