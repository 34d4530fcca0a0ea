"""What the read routers share: the time-window filter, keyset pages and the page query.

Pages run newest first and are keyed on (time, unique key), not on time alone: trackers fix
on whole seconds, so many rows share a timestamp, and a time-only cursor would skip some.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from fastapi.exceptions import RequestValidationError
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

M = TypeVar("M", bound=BaseModel)
KeyType = Literal["uuid", "bigint"]
MAX_LIMIT = 10_000
# Issued cursors are under 100 characters; anything much longer was not made here.
_MAX_CURSOR_CHARS = 256
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_INT_TEXT = re.compile(r"-?[0-9]{1,19}")


class Window(BaseModel):
    """Query parameters common to every list of stored events. Unknown names are refused."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime | None = Field(None, description="only rows at or after this time")
    until: AwareDatetime | None = Field(None, description="only rows at or before this time")
    before: AwareDatetime | None = Field(None, description="only rows strictly before this time")
    cursor: str | None = Field(None, description="`next_cursor` from the previous page")
    limit: int = Field(1000, ge=1, le=MAX_LIMIT, description="rows per page, newest first")

    @field_validator("cursor")
    @classmethod
    def _cursor_is_ours(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)
        return value


class Page(BaseModel, Generic[M]):
    items: list[M]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last page"
    )


def encode_cursor(time: datetime, key: Any) -> str:
    raw = json.dumps([time.isoformat(), str(key)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _key(text: str, key_type: KeyType | None) -> UUID | int:
    if key_type != "bigint" and _UUID_TEXT.fullmatch(text):
        return UUID(text)
    if key_type != "uuid" and _INT_TEXT.fullmatch(text):
        number = int(text)
        if -(2**63) <= number < 2**63:
            return number
    raise ValueError(f"not a {key_type or 'uuid or bigint'} key")


def decode_cursor(cursor: str, key_type: KeyType | None = None) -> tuple[datetime, UUID | int]:
    """The (time, key) a cursor points after; ValueError with a fix if we did not issue it.

    Everything is checked here, before it reaches SQL: a forged cursor must be a 422, not a
    database error. With `key_type` None the key may be either kind.
    """
    try:
        if len(cursor) > _MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time_text, key_text = json.loads(raw)
        time = datetime.fromisoformat(time_text)
        if time.tzinfo is None:
            raise ValueError("no timezone")
        return time, _key(key_text, key_type)
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise ValueError(
            "cursor is not one this API issued; copy next_cursor exactly, or start without it"
        ) from None


def model_columns(model: type[BaseModel]) -> sql.Composable:
    """The SELECT list for `model`: one column per field, so query and model cannot drift."""
    return sql.SQL(", ").join(sql.Identifier(name) for name in model.model_fields)


async def fetch_page(
    pool: AsyncConnectionPool,
    *,
    table: str,
    model: type[M],
    window: Window,
    equals: dict[str, object],
    time_column: str = "time",
    key_column: str = "event_id",
    key_type: KeyType = "uuid",
    columns: sql.Composable | None = None,
    conditions: Sequence[sql.Composable] = (),
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Page[M]:
    """One page of `table`, newest first, filtered by `equals` (None values ignored)."""
    t, k = sql.Identifier(time_column), sql.Identifier(key_column)
    where: list[sql.Composable] = list(conditions)
    params: list[Any] = []
    for column, value in equals.items():
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    for value, op in ((window.since, ">="), (window.until, "<="), (window.before, "<")):
        if value is not None:
            where.append(sql.SQL("{} {} %s").format(t, sql.SQL(op)))
            params.append(value)
    if window.cursor is not None:
        try:
            after_time, after_key = decode_cursor(window.cursor, key_type)
        except ValueError as err:
            # Well formed, but a key of the other kind (a cursor from another list, say).
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", "cursor"), "msg": str(err)}]
            ) from None
        where.append(sql.SQL("({t}, {k}) < (%s, %s)").format(t=t, k=k))
        params.extend([after_time, after_key])
    query = sql.SQL(
        "SELECT {cols} FROM {table} {where} ORDER BY {t} DESC, {k} DESC LIMIT %s"
    ).format(
        cols=columns or model_columns(model),
        table=sql.Identifier(table),
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
        t=t,
        k=k,
    )
    params.append(window.limit + 1)  # one more than asked tells whether another page exists
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        rows = await cur.fetchall()
    next_cursor = None
    if len(rows) > window.limit:
        rows = rows[: window.limit]
        next_cursor = encode_cursor(rows[-1][time_column], rows[-1][key_column])
    items = [model.model_validate(convert(r) if convert else r) for r in rows]
    return Page[model](items=items, next_cursor=next_cursor)  # type: ignore[valid-type]
