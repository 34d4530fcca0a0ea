"""Scans nobody claimed: list the open ones, assign each to its order or dismiss it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.dispatch.errors import as_http
from ingest_service.dispatch.unmatched import (
    COLUMNS,
    Assign,
    Dismiss,
    UnmatchedFilter,
    UnmatchedOut,
    assign_scan,
    dismiss_scan,
)

from . import Page, fetch_page

router = APIRouter(prefix="/unmatched", tags=["unmatched"])
READERS = requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER)
MANAGERS = requires(Role.DISPATCHER)


@router.get("", dependencies=[Depends(READERS)])
async def unmatched(
    pool: PoolDep, filters: Annotated[UnmatchedFilter, Query()]
) -> Page[UnmatchedOut]:
    """Unmatched scans (open ones unless `status` says otherwise), newest first."""
    return await fetch_page(
        pool,
        table="unmatched_scans",
        model=UnmatchedOut,
        window=filters,
        equals={"site": filters.site, "gateway": filters.gateway, "status": filters.status},
        time_column="seen_at",
        columns=COLUMNS,
    )


@router.post("/{event_id}/assign", dependencies=[Depends(MANAGERS)])
async def assign(event_id: UUID, body: Assign, pool: PoolDep, user: CurrentUser) -> UnmatchedOut:
    """The scanned item belongs to this order: resolve the scan and note it on the order."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await assign_scan(conn, event_id, body, actor=user.username)


@router.post("/{event_id}/dismiss", dependencies=[Depends(MANAGERS)])
async def dismiss(event_id: UUID, body: Dismiss, pool: PoolDep, user: CurrentUser) -> UnmatchedOut:
    """Nothing to do for this scan; say why in the note."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await dismiss_scan(conn, event_id, body, actor=user.username)
