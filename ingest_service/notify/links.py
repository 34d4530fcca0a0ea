"""Tracking links: the token in /t/{token} (docs/notifications.md, "Tracking page").

A token is 192 random bits from `secrets` (32 base64url characters): unguessable, and
meaning nothing. Each order has at most one live link; revoking it keeps the row (who and
when) and the next message or admin call makes a new one.
"""

from __future__ import annotations

import secrets
from typing import Any

from psycopg import AsyncConnection

TOKEN_BYTES = 24  # 192 bits; the issue asks for at least 128


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


async def link_for(conn: AsyncConnection[Any], order_id: int, created_by: str) -> str:
    """The order's live token, made now if it has none. Safe when two callers race: the
    partial unique index lets one insert win and the other reads it."""
    for _ in range(3):
        cur = await conn.execute(
            "SELECT token FROM tracking_links WHERE order_id = %s AND revoked_at IS NULL",
            (order_id,),
        )
        if row := await cur.fetchone():
            return str(row[0])
        cur = await conn.execute(
            "INSERT INTO tracking_links (token, order_id, created_by) VALUES (%s, %s, %s)"
            " ON CONFLICT (order_id) WHERE revoked_at IS NULL DO NOTHING RETURNING token",
            (new_token(), order_id, created_by),
        )
        if row := await cur.fetchone():
            return str(row[0])
    raise RuntimeError(f"could not make a tracking link for order {order_id}")


async def revoke(conn: AsyncConnection[Any], order_id: int, revoked_by: str) -> bool:
    """Revoke the order's live link; False when it had none."""
    cur = await conn.execute(
        "UPDATE tracking_links SET revoked_at = now(), revoked_by = %s"
        " WHERE order_id = %s AND revoked_at IS NULL",
        (revoked_by, order_id),
    )
    return cur.rowcount > 0


def tracking_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/t/{token}"
