"""Device health: the latest status each gateway reported for each of its devices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from ingest_service.auth import PoolDep, Role, requires

from . import model_columns

router = APIRouter(prefix="/devices", tags=["devices"])


class DeviceStatus(BaseModel):
    time: datetime
    event_id: UUID
    site: str
    gateway: str
    device: str
    seq: int
    state: str
    detail: str | None
    counters: dict[str, Any]
    received_at: datetime
    ingested_at: datetime


class StatusFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str | None = None
    gateway: str | None = None
    state: str | None = None


@router.get("/status", dependencies=[Depends(requires(Role.DISPATCHER, Role.VIEWER))])
async def device_status(
    pool: PoolDep, filters: Annotated[StatusFilter, Query()]
) -> list[DeviceStatus]:
    """The newest status of each (gateway, device); filter `state=offline` to see what is down."""
    inner: list[sql.Composable] = []
    params: list[object] = []
    for column in ("site", "gateway"):
        if (value := getattr(filters, column)) is not None:
            inner.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    # The state filter applies after picking the latest row: "is offline now", not "ever was".
    outer = sql.SQL("")
    if filters.state is not None:
        outer = sql.SQL("WHERE state = %s")
        params.append(filters.state)
    query = sql.SQL(
        "SELECT * FROM (SELECT DISTINCT ON (gateway, device) {cols} FROM device_status {where}"
        " ORDER BY gateway, device, time DESC) latest {outer} ORDER BY gateway, device"
    ).format(
        cols=model_columns(DeviceStatus),
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(inner) if inner else sql.SQL(""),
        outer=outer,
    )
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        return [DeviceStatus.model_validate(r) for r in await cur.fetchall()]
