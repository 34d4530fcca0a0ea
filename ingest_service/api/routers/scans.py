"""Package scans as stored: barcode and RFID reads at doors and stations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ingest_service.auth import PoolDep, Role, requires

from . import Page, Window, fetch_page

router = APIRouter(prefix="/scans", tags=["scans"])


class Scan(BaseModel):
    time: datetime
    event_id: UUID
    site: str
    gateway: str
    device: str
    seq: int
    code: str
    code_kind: str
    symbology: str | None
    antenna: int | None
    rssi_dbm: float | None
    read_count: int
    door: str | None
    station: str | None
    stage: str | None
    received_at: datetime
    ingested_at: datetime


class ScanFilter(Window):
    site: str | None = None
    gateway: str | None = None
    code: str | None = None
    door: str | None = None
    station: str | None = None


@router.get("", dependencies=[Depends(requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER))])
async def list_scans(pool: PoolDep, filters: Annotated[ScanFilter, Query()]) -> Page[Scan]:
    """Stored scans, newest first."""
    return await fetch_page(
        pool,
        table="scans",
        model=Scan,
        window=filters,
        equals={
            "site": filters.site,
            "gateway": filters.gateway,
            "code": filters.code,
            "door": filters.door,
            "station": filters.station,
        },
    )
