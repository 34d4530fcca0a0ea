"""Users in the `users` table: lookup, login, creation, changes, and the first admin.

Functions that run argon2 for the API take the pool, not a connection, and hold a connection
only around their queries: a check takes about 0.2 s, and the pool has few connections.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from .limits import Argon2Gate, TooManyRequests
from .passwords import MIN_PASSWORD_LENGTH, hash_secret, hash_secret_async, needs_rehash
from .roles import Role

log = logging.getLogger(__name__)

USER_COLUMNS = sql.SQL("u.id, u.username, u.role, u.active, u.created_at, u.password_hash")


class UserError(Exception):
    """A user change that cannot be made; the message says why."""


class UsernameTaken(UserError):
    pass


class UserNotFound(UserError):
    pass


class LastAdmin(UserError):
    pass


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    active: bool
    created_at: datetime
    # Changes whenever the password does; sessions carry it, so a new password ends them.
    password_stamp: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        return cls(
            id=row["id"],
            username=row["username"],
            role=Role(row["role"]),
            active=row["active"],
            created_at=row["created_at"],
            password_stamp=password_stamp(row["password_hash"]),
        )


def password_stamp(password_hash: str | None) -> str:
    if password_hash is None:
        return ""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


async def get_user(conn: psycopg.AsyncConnection, *, user_id: int) -> User | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        sql.SQL("SELECT {} FROM users u WHERE u.id = %s").format(USER_COLUMNS), (user_id,)
    )
    row = await cur.fetchone()
    return User.from_row(row) if row else None


async def authenticate(
    pool: AsyncConnectionPool, *, username: str, password: str, gate: Argon2Gate
) -> User | None:
    """The user whose name and password these are (active or not), else None.

    Raises TooManyRequests when the gate has no argon2 slot free.
    """
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            sql.SQL("SELECT {} FROM users u WHERE u.username = %s").format(USER_COLUMNS),
            (username,),
        )
        row = await cur.fetchone()
    stored = row["password_hash"] if row else None
    # Verify even when the user is unknown, so timing does not reveal which names exist.
    if not await gate.verify(stored, password) or row is None:
        return None
    if needs_rehash(stored):
        try:
            new_hash = await gate.hash(password)
        except TooManyRequests:
            return User.from_row(row)  # the login stands; the rehash waits for a quieter one
        async with pool.connection() as conn:
            # Only if the password is still the one just checked: an admin may have reset it.
            cur = await conn.execute(
                "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s",
                (new_hash, row["id"], stored),
            )
        if cur.rowcount == 1:
            log.info("rehashed the password of user %r with the current parameters", username)
            row = {**row, "password_hash": new_hash}
    return User.from_row(row)


async def list_users(conn: psycopg.AsyncConnection) -> list[User]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("SELECT {} FROM users u ORDER BY u.id").format(USER_COLUMNS))
    return [User.from_row(r) for r in await cur.fetchall()]


async def hash_new_password(password: str, *, gate: Argon2Gate) -> str:
    """Check a new password's length and hash it; call before taking a connection."""
    check_password(password)
    return await gate.hash(password)


async def insert_user(
    conn: psycopg.AsyncConnection, *, username: str, password_hash: str, role: Role
) -> User:
    """Add a user whose password was hashed already (see `hash_new_password`)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        sql.SQL(
            "INSERT INTO users AS u (username, password_hash, role) VALUES (%s, %s, %s)"
            " ON CONFLICT (username) DO NOTHING RETURNING {}"
        ).format(USER_COLUMNS),
        (username, password_hash, role.value),
    )
    row = await cur.fetchone()
    if row is None:
        raise UsernameTaken(f"username {username!r} is taken; choose another")
    return User.from_row(row)


async def create_user(
    conn: psycopg.AsyncConnection, *, username: str, password: str, role: Role
) -> User:
    """Check, hash and add in one go, for tools with a connection of their own (the CLI)."""
    check_password(password)
    password_hash = await hash_secret_async(password)
    return await insert_user(conn, username=username, password_hash=password_hash, role=role)


async def update_user(
    conn: psycopg.AsyncConnection,
    *,
    user_id: int,
    role: Role | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
) -> User:
    """Change role, active flag and/or password; refuses to leave no active admin.

    A new password comes hashed already (see `hash_new_password`), so the transaction and
    its locks are not held while argon2 runs.
    """
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        # Lock the admins first so two admins demoting each other cannot both succeed.
        await cur.execute("SELECT id FROM users WHERE role = 'admin' AND active FOR UPDATE")
        active_admins = {r["id"] for r in await cur.fetchall()}
        await cur.execute(
            sql.SQL(
                "UPDATE users AS u SET role = coalesce(%s, role), active = coalesce(%s, active),"
                " password_hash = coalesce(%s, password_hash) WHERE id = %s RETURNING {}"
            ).format(USER_COLUMNS),
            (role.value if role else None, active, password_hash, user_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise UserNotFound(f"no user with id {user_id}")
        still_admin = row["role"] == Role.ADMIN and row["active"]
        if active_admins == {user_id} and not still_admin:
            # Raising rolls the transaction back: the change is not made.
            raise LastAdmin(
                f"user {row['username']!r} is the last active admin; make another user admin first"
            )
    return User.from_row(row)


def ensure_admin(conn: psycopg.Connection, *, username: str, password: str) -> bool:
    """Create admin `username` unless a user of that name exists; True when it created one."""
    check_password(password)
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM users WHERE username = %s", (username,)).fetchone()
        if exists:
            return False
        row = conn.execute(
            "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, 'admin')"
            " ON CONFLICT (username) DO NOTHING RETURNING id",
            (username, hash_secret(password)),
        ).fetchone()
    return row is not None
