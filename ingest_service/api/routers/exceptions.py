"""Exceptions: find them, raise one by hand, acknowledge, resolve, note, give an owner."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.dispatch.errors import as_http
from ingest_service.dispatch.exceptions import (
    ExceptionDetail,
    ExceptionFilter,
    ExceptionIn,
    ExceptionOut,
    Note,
    add_note,
    get_exception,
    list_exceptions,
    move_exception,
    raise_exception,
    set_owner,
)
from orders.exceptions import ExceptionStatus

router = APIRouter(prefix="/exceptions", tags=["exceptions"])
READERS = requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER)
RAISERS = requires(Role.DISPATCHER, Role.DOCK)
MANAGERS = requires(Role.DISPATCHER)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OptionalNote(_Body):
    note: Note | None = None


class RequiredNote(_Body):
    note: Note


class Owner(_Body):
    owner: str | None = Field(description="a username; null: nobody")


class ExceptionPage(BaseModel):
    items: list[ExceptionOut]
    next_cursor: str | None


@router.get("", dependencies=[Depends(READERS)])
async def find(pool: PoolDep, filters: Annotated[ExceptionFilter, Query()]) -> ExceptionPage:
    """Exceptions matching every filter given, newest first."""
    async with pool.connection() as conn:
        with as_http():
            items, cursor = await list_exceptions(conn, filters)
    return ExceptionPage(items=items, next_cursor=cursor)


@router.post("", status_code=201, dependencies=[Depends(RAISERS)])
async def raise_one(body: ExceptionIn, pool: PoolDep, user: CurrentUser) -> ExceptionDetail:
    """Open an exception by hand, e.g. damage seen at the dock; name what it concerns."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await raise_exception(conn, body, actor=user.username)


@router.get("/{exception_id}", dependencies=[Depends(READERS)])
async def one(exception_id: int, pool: PoolDep) -> ExceptionDetail:
    async with pool.connection() as conn:
        with as_http():
            return await get_exception(conn, exception_id)


@router.post("/{exception_id}/acknowledge", dependencies=[Depends(MANAGERS)])
async def acknowledge(
    exception_id: int,
    pool: PoolDep,
    user: CurrentUser,
    body: Annotated[OptionalNote | None, Body()] = None,
) -> ExceptionDetail:
    """Someone is on it: an open exception becomes acknowledged (and yours, if unowned)."""
    note = body.note if body else None
    return await _move(pool, exception_id, ExceptionStatus.ACKNOWLEDGED, note, user.username)


@router.post("/{exception_id}/resolve", dependencies=[Depends(MANAGERS)])
async def resolve(
    exception_id: int, body: RequiredNote, pool: PoolDep, user: CurrentUser
) -> ExceptionDetail:
    """Close it, saying what was done. Resolved is final: a recurrence is a new exception."""
    return await _move(pool, exception_id, ExceptionStatus.RESOLVED, body.note, user.username)


async def _move(
    pool: PoolDep, exception_id: int, target: ExceptionStatus, note: str | None, actor: str
) -> ExceptionDetail:
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await move_exception(conn, exception_id, target, note=note, actor=actor)


@router.post("/{exception_id}/notes", status_code=201, dependencies=[Depends(MANAGERS)])
async def note(
    exception_id: int, body: RequiredNote, pool: PoolDep, user: CurrentUser
) -> ExceptionDetail:
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await add_note(conn, exception_id, body.note, actor=user.username)


@router.put("/{exception_id}/owner", dependencies=[Depends(MANAGERS)])
async def owner(
    exception_id: int, body: Owner, pool: PoolDep, user: CurrentUser
) -> ExceptionDetail:
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await set_owner(conn, exception_id, body.owner, actor=user.username)
