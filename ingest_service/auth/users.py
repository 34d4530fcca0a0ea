"""Users in the `users` table: lookup, login, creation, changes, and the first admin."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .passwords import (
    MIN_PASSWORD_LENGTH,
    hash_secret,
    hash_secret_async,
    needs_rehash,
    verify_secret_async,
)
from .roles import Role

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
    conn: psycopg.AsyncConnection, *, username: str, password: str
) -> User | None:
    """The user whose name and password these are (active or not), else None."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        sql.SQL("SELECT {} FROM users u WHERE u.username = %s").format(USER_COLUMNS), (username,)
    )
    row = await cur.fetchone()
    stored = row["password_hash"] if row else None
    # Verify even when the user is unknown, so timing does not reveal which names exist.
    if not await verify_secret_async(stored, password) or row is None:
        return None
    if needs_rehash(stored):
        new_hash = await hash_secret_async(password)
        await conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = %s", (new_hash, row["id"])
        )
        row = {**row, "password_hash": new_hash}
    return User.from_row(row)


async def list_users(conn: psycopg.AsyncConnection) -> list[User]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql.SQL("SELECT {} FROM users u ORDER BY u.id").format(USER_COLUMNS))
    return [User.from_row(r) for r in await cur.fetchall()]


async def create_user(
    conn: psycopg.AsyncConnection, *, username: str, password: str, role: Role
) -> User:
    check_password(password)
    password_hash = await hash_secret_async(password)
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


async def update_user(
    conn: psycopg.AsyncConnection,
    *,
    user_id: int,
    role: Role | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change role, active flag and/or password; refuses to leave no active admin."""
    if password is not None:
        check_password(password)
    password_hash = await hash_secret_async(password) if password is not None else None
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
