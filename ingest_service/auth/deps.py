"""FastAPI dependencies: the database pool, the settings, the current user and role guards.

Routes write `dependencies=[Depends(requires(Role.DISPATCHER, Role.VIEWER))]` and take
`user: CurrentUser` or `pool: PoolDep` as parameters. Routes that hash a secret take `gate:
Argon2Dep` and hash before they take a connection. WebSocket routes, which authenticate
from their first message, declare `socket_requires(...)` and call `authenticate_token`.
`route_table` reads the guards back from an app, which is how `create_app` and the tests
check that no route is left open.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool
from starlette.requests import HTTPConnection
from starlette.routing import WebSocketRoute

from ingest_service.settings import Settings
from ingest_service.storage import StorageMode

from .limits import Argon2Gate, CredentialThrottle
from .roles import Role, allows
from .tokens import (
    CredentialError,
    authenticate_api_token,
    looks_like_api_token,
    read_session,
)
from .users import User, get_user

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before included routers became lazy: app.routes is flat

    def iter_route_contexts(routes):  # type: ignore[no-redef]
        return iter(routes)


_bearer = HTTPBearer(
    auto_error=False,
    description="A session token from POST /api/v1/auth/login, or an API token tlk_<id>_<secret>.",
)


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_storage_mode(request: Request) -> StorageMode:
    return request.app.state.storage_mode


def get_argon2(request: Request) -> Argon2Gate:
    return request.app.state.argon2


def get_throttle(request: Request) -> CredentialThrottle:
    return request.app.state.throttle


def client_address(connection: HTTPConnection) -> str:
    """The caller's address, as the server sees it (behind a proxy, set --proxy-headers)."""
    return connection.client.host if connection.client else "unknown"


PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ModeDep = Annotated[StorageMode, Depends(get_storage_mode)]  # TimescaleDB or plain PostgreSQL
Argon2Dep = Annotated[Argon2Gate, Depends(get_argon2)]
ThrottleDep = Annotated[CredentialThrottle, Depends(get_throttle)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticate_token(connection: HTTPConnection, token: str) -> User:
    """The active user behind `token` (a session JWT or an API token), freshly read.

    Shared by the bearer guard and the live WebSocket's first message. Raises
    CredentialError with a message safe to show the caller, and TooManyRequests when an
    address keeps sending bad API tokens.
    """
    state = connection.app.state
    if looks_like_api_token(token):
        # API tokens cost an argon2 check, so a client that keeps sending bad ones is
        # slowed down like one that keeps guessing passwords.
        client = client_address(connection)
        state.throttle.check(client=client)
        try:
            user = await authenticate_api_token(
                state.pool, token=token, cache=state.token_cache, gate=state.argon2
            )
        except CredentialError:
            state.throttle.failed(client=client)
            raise
    else:
        user = await _session_user(state.pool, token, settings=state.settings)
    if not user.active:
        raise CredentialError(f"user {user.username!r} is disabled; ask an admin")
    return user


async def get_current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The active user behind the request's bearer token, freshly read from the database."""
    if credentials is None:
        raise _unauthorized(
            "log in first: send `Authorization: Bearer <token>` with a session token from "
            "POST /api/v1/auth/login or an API token"
        )
    try:
        return await authenticate_token(request, credentials.credentials)
    except CredentialError as err:
        raise _unauthorized(str(err)) from None


async def _session_user(pool: AsyncConnectionPool, token: str, *, settings: Settings) -> User:
    assert settings.secret_key is not None  # create_app refuses to start without
    claims = read_session(token, secret_key=settings.secret_key.get_secret_value())
    async with pool.connection() as conn:
        found = await get_user(conn, user_id=claims.user_id)
    if found is None or found.password_stamp != claims.password_stamp:
        raise CredentialError("the session has ended; log in again")
    return found


CurrentUser = Annotated[User, Depends(get_current_user)]


class RoleGuard:
    """A dependency that lets through users holding one of `roles` (admins always)."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    def __repr__(self) -> str:
        return f"requires({', '.join(sorted(self.roles))})"

    async def __call__(self, user: CurrentUser) -> User:
        if not allows(self.roles, user.role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=_refusal(self.roles, user))
        return user


def _refusal(roles: frozenset[Role], user: User) -> str:
    needed = " or ".join(sorted({Role.ADMIN, *roles}))
    return f"this needs role {needed}; user {user.username!r} is {user.role}"


def requires(*roles: Role) -> RoleGuard:
    """Guard a route: only users with one of `roles`, or admins, may call it."""
    if not roles:
        raise ValueError("requires() needs at least one role; public routes go in PUBLIC_ROUTES")
    return RoleGuard(frozenset(roles))


class SocketGuard:
    """Declares the roles that may open a WebSocket route; it does not authenticate.

    A browser cannot send an Authorization header on a WebSocket, so such a route reads the
    token from its first message and calls `admits(user)` itself. The marker sits in the
    route's dependencies so that `route_table` (and the startup check) sees the route's
    roles like those of any other route: `@router.websocket(path,
    dependencies=[Depends(socket_requires(...))])`.
    """

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    def __repr__(self) -> str:
        return f"socket_requires({', '.join(sorted(self.roles))})"

    async def __call__(self) -> None:
        return None

    def admits(self, user: User) -> bool:
        return allows(self.roles, user.role)

    def refusal(self, user: User) -> str:
        return _refusal(self.roles, user)


def socket_requires(*roles: Role) -> SocketGuard:
    """Mark a WebSocket route with the roles (and admins) that may use it."""
    if not roles:
        raise ValueError("socket_requires() needs at least one role")
    return SocketGuard(frozenset(roles))


def _guard_roles(dependant: Dependant) -> frozenset[Role] | None:
    pending = list(dependant.dependencies)
    found: list[frozenset[Role]] = []
    while pending:
        dep = pending.pop()
        if isinstance(dep.call, RoleGuard | SocketGuard):
            found.append(dep.call.roles)
        pending.extend(dep.dependencies)
    # Several guards on one route must all pass.
    return frozenset.intersection(*found) if found else None


def route_table(app: FastAPI) -> dict[tuple[str, str], frozenset[Role] | None]:
    """Every (method, path) the app serves, with the roles its guard admits (None: no guard).

    WebSocket routes appear as ("WS", path). Admin passes every guard, listed or not. HEAD
    is left out (it mirrors GET), and so are mounts, such as the dashboard's static files,
    which hold no data of their own.
    """
    table: dict[tuple[str, str], frozenset[Role] | None] = {}
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        roles = _guard_roles(dependant) if dependant is not None else None
        if isinstance(getattr(route, "original_route", route), WebSocketRoute):
            table[("WS", route.path)] = roles
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                table[(method, route.path)] = roles
    return table
