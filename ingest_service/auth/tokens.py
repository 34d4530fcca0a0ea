"""Bearer credentials: login sessions (signed JWTs) and API tokens for machines.

A session is an HS256 JWT naming the user; the user is re-read on every request, so it says
who, never what they may do. An API token is `tlk_<id>_<secret>`: the id finds the row, the
secret is checked against its argon2 hash, and the secret itself is shown once and never kept.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from .limits import Argon2Gate
from .users import USER_COLUMNS, User, UserNotFound

ISSUER = "tracklane"
API_TOKEN_PREFIX = "tlk_"  # noqa: S105 - a public prefix, not a secret


class CredentialError(Exception):
    """A credential that does not let anyone in; the message is safe to show its holder."""


# --- sessions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionClaims:
    user_id: int
    password_stamp: str
    expires_at: datetime


def issue_session(
    *, user: User, secret_key: str, hours: float, now: datetime | None = None
) -> tuple[str, datetime]:
    """A signed session token for `user` and the moment it expires."""
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + timedelta(hours=hours)
    claims = {
        "iss": ISSUER,
        "sub": str(user.id),
        "iat": issued,
        "exp": expires,
        "pwd": user.password_stamp,
    }
    return jwt.encode(claims, secret_key, algorithm="HS256"), expires


def read_session(token: str, *, secret_key: str) -> SessionClaims:
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=["HS256"],  # never taken from the token's header
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        return SessionClaims(
            user_id=int(claims["sub"]),
            password_stamp=str(claims.get("pwd", "")),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except jwt.ExpiredSignatureError:
        raise CredentialError("the session has expired; log in again") from None
    except (jwt.InvalidTokenError, ValueError):
        raise CredentialError(
            "the session token is not valid (bad signature or malformed); log in again"
        ) from None


# --- API tokens -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiTokenInfo:
    id: int
    name: str
    user_id: int
    username: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class VerifiedTokenCache:
    """Remembers recently verified API tokens so argon2 runs about once per TTL per token.

    Keyed by SHA-256 of the whole token and bound to the stored hash it matched. It only
    skips the argon2 step: revocation, expiry and the user's state are still read from the
    database on every request, so revoking a token or disabling its user works at once.
    """

    def __init__(self, ttl_s: float = 60.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[str, float]] = {}

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def matches(self, token: str, secret_hash: str) -> bool:
        entry = self._entries.get(self._key(token))
        if entry is None:
            return False
        cached_hash, deadline = entry
        if deadline < time.monotonic():
            self._entries.pop(self._key(token), None)
            return False
        return secrets.compare_digest(cached_hash, secret_hash)

    def remember(self, token: str, secret_hash: str) -> None:
        now = time.monotonic()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[1] >= now}
            while len(self._entries) >= self.max_entries:  # all fresh: drop the oldest
                self._entries.pop(next(iter(self._entries)))
        self._entries[self._key(token)] = (secret_hash, now + self.ttl_s)


def looks_like_api_token(token: str) -> bool:
    return token.startswith(API_TOKEN_PREFIX)


def parse_api_token(token: str) -> tuple[int, str]:
    """(id, secret) of `tlk_<id>_<secret>`; the secret may itself contain '_'."""
    _, _, rest = token.partition(API_TOKEN_PREFIX)
    id_text, sep, secret = rest.partition("_")
    if not (sep and id_text.isdigit() and secret):
        raise CredentialError("the API token is malformed; expected tlk_<id>_<secret>")
    return int(id_text), secret


_TOKEN_COLUMNS = sql.SQL(
    "t.id, t.name, t.user_id, u.username, t.created_at, t.expires_at, t.last_used_at, t.revoked_at"
)


def _info(row: dict[str, Any]) -> ApiTokenInfo:
    return ApiTokenInfo(**{f.name: row[f.name] for f in fields(ApiTokenInfo)})


@dataclass(frozen=True, slots=True)
class TokenSecret:
    """A new token's secret and its hash; the plaintext stays out of reprs and logs."""

    plaintext: str = field(repr=False)
    secret_hash: str


async def new_token_secret(*, gate: Argon2Gate) -> TokenSecret:
    """A fresh 256-bit secret, hashed; make it before taking a connection."""
    plaintext = secrets.token_urlsafe(32)
    return TokenSecret(plaintext, await gate.hash(plaintext))


async def create_api_token(
    conn: psycopg.AsyncConnection,
    *,
    user_id: int,
    name: str,
    expires_at: datetime | None,
    secret: TokenSecret,
) -> tuple[ApiTokenInfo, str]:
    """A new token for `user_id` and its plaintext, which exists only in this return value."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        sql.SQL(
            "WITH t AS (INSERT INTO api_tokens (user_id, name, secret_hash, expires_at)"
            " SELECT id, %s::text, %s::text, %s::timestamptz FROM users WHERE id = %s"
            " RETURNING *)"
            " SELECT {} FROM t JOIN users u ON u.id = t.user_id"
        ).format(_TOKEN_COLUMNS),
        (name, secret.secret_hash, expires_at, user_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise UserNotFound(f"no user with id {user_id}")
    return _info(row), f"{API_TOKEN_PREFIX}{row['id']}_{secret.plaintext}"


async def list_api_tokens(conn: psycopg.AsyncConnection) -> list[ApiTokenInfo]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        sql.SQL(
            "SELECT {} FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id"
        ).format(_TOKEN_COLUMNS)
    )
    return [_info(r) for r in await cur.fetchall()]


async def revoke_api_token(conn: psycopg.AsyncConnection, *, token_id: int) -> ApiTokenInfo | None:
    """Revoke token `token_id` (a no-op if it already was); None if there is no such token."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        sql.SQL(
            "WITH t AS (UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = %s RETURNING *)"
            " SELECT {} FROM t JOIN users u ON u.id = t.user_id"
        ).format(_TOKEN_COLUMNS),
        (token_id,),
    )
    row = await cur.fetchone()
    return _info(row) if row else None


async def authenticate_api_token(
    pool: AsyncConnectionPool, *, token: str, cache: VerifiedTokenCache, gate: Argon2Gate
) -> User:
    """The user an API token acts for; raises CredentialError if it must be refused.

    Raises TooManyRequests when the token needs an argon2 check and the gate has no slot free.
    No connection is held during that check.
    """
    token_id, secret = parse_api_token(token)
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            sql.SQL(
                "SELECT {}, t.secret_hash, t.revoked_at, t.expires_at AS token_expires_at"
                " FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = %s"
            ).format(USER_COLUMNS),
            (token_id,),
        )
        row = await cur.fetchone()
    stored = row["secret_hash"] if row else None
    fresh = not cache.matches(token, stored or "")
    # Unknown ids still pay for a verification, like unknown usernames at login. Revocation
    # and expiry are told only to a caller who proved the secret.
    if fresh and (not await gate.verify(stored, secret) or row is None):
        raise CredentialError("the API token is not valid; ask an admin for a new one")
    assert row is not None  # a cache hit implies a stored hash, hence a row
    if row["revoked_at"] is not None:
        revoked = row["revoked_at"].astimezone(UTC)
        raise CredentialError(
            f"API token {token_id} was revoked at {revoked:%Y-%m-%d %H:%M} UTC;"
            " ask an admin for a new one"
        )
    if row["token_expires_at"] is not None and row["token_expires_at"] <= datetime.now(UTC):
        raise CredentialError(f"API token {token_id} has expired; ask an admin for a new one")
    if fresh:
        cache.remember(token, row["secret_hash"])
        # Written once per cache period, not per request: last use to within a minute.
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE api_tokens SET last_used_at = now() WHERE id = %s", (token_id,)
            )
    return User.from_row(row)
