"""Exceptions as records: find them, raise one by hand, acknowledge, resolve, note, own.

Status changes go through `orders.exceptions.exception_move`; every one leaves a note with
its new status, so an exception's notes read as its timeline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest_service.api.routers import decode_cursor, encode_cursor
from orders.exceptions import ExceptionKind, ExceptionStatus, exception_move
from orders.models import Ref

from .errors import Conflict, NotFound, Refused

Note = Annotated[str, Field(min_length=1, max_length=2000)]
Sscc = Annotated[str, Field(pattern=r"^[0-9]{18}$", description="the package's 18-digit SSCC")]


class ExceptionFilter(BaseModel):
    """Every filter given narrows the list; unknown names are refused."""

    model_config = ConfigDict(extra="forbid")

    kind: list[ExceptionKind] | None = None
    status: list[ExceptionStatus] | None = None
    order: str | None = Field(None, description="order number")
    trip: str | None = None
    vehicle: str | None = None
    owner: str | None = None
    since: AwareDatetime | None = Field(None, description="opened at or after this time")
    cursor: str | None = Field(None, description="`next_cursor` from the previous page")
    limit: int = Field(100, ge=1, le=1000, description="newest first")


class ExceptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: ExceptionKind
    summary: Annotated[str, Field(min_length=1, max_length=500)]
    order: Ref | None = Field(None, description="order number")
    package: Sscc | None = None
    trip: Ref | None = None
    vehicle: Ref | None = None


class ExceptionOut(BaseModel):
    id: int
    kind: str
    status: str
    summary: str
    order_number: str | None
    package_sscc: str | None
    trip_id: str | None
    vehicle_id: str | None
    sku: str | None
    evidence_event_id: UUID | None
    opened_at: datetime
    opened_by: str
    owner: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class NoteOut(BaseModel):
    id: int
    at: datetime
    author: str
    note: str
    status_to: str | None


class ExceptionDetail(ExceptionOut):
    notes: list[NoteOut] = Field(description="oldest first")


_SELECT = sql.SQL(
    "SELECT e.id, e.kind, e.status, e.summary, o.number AS order_number,"
    " p.sscc AS package_sscc, e.trip_id, e.vehicle_id, e.sku, e.evidence_event_id,"
    " e.opened_at, e.opened_by, e.owner, e.acknowledged_at, e.resolved_at"
    " FROM exceptions e LEFT JOIN orders o ON o.id = e.order_id"
    " LEFT JOIN packages p ON p.id = e.package_id"
)


async def list_exceptions(
    conn: AsyncConnection[Any], f: ExceptionFilter
) -> tuple[list[ExceptionOut], str | None]:
    """A page of exceptions, newest first (keyset on opened_at, id), and the next cursor."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    for clause, value in (
        ("e.kind = ANY(%s)", [k.value for k in f.kind] if f.kind else None),
        ("e.status = ANY(%s)", [s.value for s in f.status] if f.status else None),
        ("o.number = %s", f.order),
        ("e.trip_id = %s", f.trip),
        ("e.vehicle_id = %s", f.vehicle),
        ("e.owner = %s", f.owner),
        ("e.opened_at >= %s", f.since),
    ):
        if value is not None:
            where.append(sql.SQL(clause))  # type: ignore[arg-type]  # constant text only
            params.append(value)
    if f.cursor is not None:
        try:
            after_time, after_id = decode_cursor(f.cursor, "bigint")
        except ValueError as err:
            raise Refused(str(err)) from None
        where.append(sql.SQL("(e.opened_at, e.id) < (%s, %s)"))
        params.extend([after_time, after_id])
    query = sql.SQL("{select} {where} ORDER BY e.opened_at DESC, e.id DESC LIMIT %s").format(
        select=_SELECT,
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
    )
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, [*params, f.limit + 1])
    rows = await cur.fetchall()
    next_cursor = None
    if len(rows) > f.limit:
        rows = rows[: f.limit]
        next_cursor = encode_cursor(rows[-1]["opened_at"], rows[-1]["id"])
    return [ExceptionOut.model_validate(r) for r in rows], next_cursor


async def get_exception(conn: AsyncConnection[Any], exception_id: int) -> ExceptionDetail:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_SELECT + sql.SQL(" WHERE e.id = %s"), (exception_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no exception {exception_id}: GET /api/v1/exceptions lists them")
    await cur.execute(
        "SELECT id, at, author, note, status_to FROM exception_notes WHERE exception_id = %s"
        " ORDER BY id",
        (exception_id,),
    )
    return ExceptionDetail.model_validate({**row, "notes": await cur.fetchall()})


async def _id_of(conn: AsyncConnection[Any], query: str, value: str | None, what: str) -> Any:
    if value is None:
        return None
    cur = await conn.execute(query, (value,))
    row = await cur.fetchone()
    if row is None:
        raise Refused(f"no {what} {value}: check it, or leave {what} out")
    return row


async def raise_exception(
    conn: AsyncConnection[Any], e: ExceptionIn, *, actor: str
) -> ExceptionDetail:
    """Open an exception by hand (damage seen at the dock, say); no dedup key."""
    order = await _id_of(conn, "SELECT id FROM orders WHERE number = %s", e.order, "order")
    package = await _id_of(
        conn, "SELECT id, order_id FROM packages WHERE sscc = %s", e.package, "package"
    )
    await _id_of(conn, "SELECT 1 FROM trips WHERE id = %s", e.trip, "trip")
    await _id_of(conn, "SELECT 1 FROM vehicles WHERE id = %s", e.vehicle, "vehicle")
    order_id = order[0] if order else None
    if package is not None:
        if order_id is not None and package[1] != order_id:
            raise Refused(f"package {e.package} is not of order {e.order}: check both")
        order_id = package[1]
    cur = await conn.execute(
        "INSERT INTO exceptions (kind, summary, order_id, package_id, trip_id, vehicle_id,"
        " opened_by) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (e.kind, e.summary, order_id, package[0] if package else None, e.trip, e.vehicle, actor),
    )
    row = await cur.fetchone()
    assert row is not None
    return await get_exception(conn, row[0])


async def _locked(conn: AsyncConnection[Any], exception_id: int) -> tuple[ExceptionStatus, Any]:
    """The exception's status and owner, its row locked until the transaction ends."""
    cur = await conn.execute(
        "SELECT status, owner FROM exceptions WHERE id = %s FOR UPDATE", (exception_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no exception {exception_id}: GET /api/v1/exceptions lists them")
    return ExceptionStatus(row[0]), row[1]


async def move_exception(
    conn: AsyncConnection[Any],
    exception_id: int,
    target: ExceptionStatus,
    *,
    note: str | None,
    actor: str,
) -> ExceptionDetail:
    """Acknowledge or resolve by the status table. Acknowledging takes ownership if nobody
    owns it yet."""
    status, _ = await _locked(conn, exception_id)
    if (why := exception_move(status, target)) is not None:
        raise Conflict(f"exception {exception_id}: {why}")
    if target is ExceptionStatus.ACKNOWLEDGED:
        await conn.execute(
            "UPDATE exceptions SET status = %s, acknowledged_at = now(),"
            " owner = COALESCE(owner, %s) WHERE id = %s",
            (target, actor, exception_id),
        )
    else:
        await conn.execute(
            "UPDATE exceptions SET status = %s, resolved_at = now() WHERE id = %s",
            (target, exception_id),
        )
    await _note(conn, exception_id, note or str(target), actor=actor, status_to=target)
    return await get_exception(conn, exception_id)


async def _note(
    conn: AsyncConnection[Any],
    exception_id: int,
    note: str,
    *,
    actor: str,
    status_to: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO exception_notes (exception_id, author, note, status_to)"
        " VALUES (%s, %s, %s, %s)",
        (exception_id, actor, note, status_to),
    )


async def add_note(
    conn: AsyncConnection[Any], exception_id: int, note: str, *, actor: str
) -> ExceptionDetail:
    await _locked(conn, exception_id)
    await _note(conn, exception_id, note, actor=actor)
    return await get_exception(conn, exception_id)


async def set_owner(
    conn: AsyncConnection[Any], exception_id: int, owner: str | None, *, actor: str
) -> ExceptionDetail:
    """Give the exception to an active user (None: nobody); the change is noted."""
    _, before = await _locked(conn, exception_id)
    if owner is not None:
        cur = await conn.execute("SELECT 1 FROM users WHERE username = %s AND active", (owner,))
        if await cur.fetchone() is None:
            raise Refused(f"no active user {owner}: give the exception to an existing user")
    if before != owner:
        await conn.execute("UPDATE exceptions SET owner = %s WHERE id = %s", (owner, exception_id))
        note = f"owner: {before or 'nobody'} → {owner or 'nobody'}"
        await _note(conn, exception_id, note, actor=actor)
    return await get_exception(conn, exception_id)
