"""Messages ingest could not accept, kept whole with the reason, for a person to look at."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from ingest_service.auth import CurrentUser, PoolDep, Role, requires

from . import Page, Window, fetch_page

router = APIRouter(prefix="/quarantine", tags=["quarantine"])

_COLUMNS = sql.SQL(
    "id, quarantined_at, topic, reason, event_index, payload, resolved_at, resolved_by"
)


class QuarantinedMessage(BaseModel):
    id: int
    quarantined_at: datetime
    topic: str
    reason: str
    event_index: int | None = Field(description="which event of a batch was refused, if one")
    payload: str = Field(description="the message as received, as text or base64")
    payload_encoding: Literal["utf-8", "base64"]
    payload_bytes: int
    resolved_at: datetime | None
    resolved_by: str | None


class QuarantineFilter(Window):
    topic: str | None = None
    include_resolved: bool = Field(False, description="also list messages already resolved")


def _readable(row: dict[str, Any]) -> dict[str, Any]:
    raw = bytes(row["payload"])
    try:
        payload, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    return {**row, "payload": payload, "payload_encoding": encoding, "payload_bytes": len(raw)}


@router.get("", dependencies=[Depends(requires(Role.DISPATCHER))])
async def list_quarantine(
    pool: PoolDep, filters: Annotated[QuarantineFilter, Query()]
) -> Page[QuarantinedMessage]:
    """Open quarantined messages, newest first."""
    return await fetch_page(
        pool,
        table="quarantine",
        model=QuarantinedMessage,
        window=filters,
        equals={"topic": filters.topic},
        time_column="quarantined_at",
        key_column="id",
        key_type="bigint",
        columns=_COLUMNS,
        conditions=() if filters.include_resolved else (sql.SQL("resolved_at IS NULL"),),
        convert=_readable,
    )


@router.post("/{message_id}/resolve", dependencies=[Depends(requires(Role.DISPATCHER))])
async def resolve(message_id: int, pool: PoolDep, user: CurrentUser) -> QuarantinedMessage:
    """Mark a message as dealt with; it leaves the open list and records who resolved it."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            sql.SQL(
                "UPDATE quarantine SET resolved_at = now(), resolved_by = %s"
                " WHERE id = %s AND resolved_at IS NULL RETURNING {}"
            ).format(_COLUMNS),
            (user.username, message_id),
        )
        row = await cur.fetchone()
        if row is None:
            await cur.execute(
                "SELECT resolved_at, resolved_by FROM quarantine WHERE id = %s", (message_id,)
            )
            existing = await cur.fetchone()
    if row is not None:
        return QuarantinedMessage.model_validate(_readable(row))
    if existing is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantined message {message_id}")
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        f"quarantined message {message_id} was already resolved by {existing['resolved_by']}"
        f" at {existing['resolved_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
    )
