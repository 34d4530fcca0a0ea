"""What the read routers share: the time-window filter, keyset pages and the page query.

Pages run newest first and are keyed on (time, unique key), not on time alone: trackers fix
on whole seconds, so many rows share a timestamp, and a time-only cursor would skip some.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

M = TypeVar("M", bound=BaseModel)
MAX_LIMIT = 10_000


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


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time_text, key = json.loads(raw)
        return datetime.fromisoformat(time_text), str(key)
    except (binascii.Error, ValueError, TypeError):
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
    key_type: Literal["uuid", "bigint"] = "uuid",
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
        after_time, after_key = decode_cursor(window.cursor)
        # The cursor carries the key as text; compare it as the column's own type.
        where.append(sql.SQL("({t}, {k}) < (%s, %s::{kt})").format(t=t, k=k, kt=sql.SQL(key_type)))
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
