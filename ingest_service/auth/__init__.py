"""Authentication and roles: argon2 passwords, session JWTs, API tokens, route guards.

Use `requires(Role.X, ...)` on every route (`socket_requires` on WebSockets, which check
their first message with `authenticate_token`), `CurrentUser` / `PoolDep` / `Argon2Dep` as
parameter types, and `ensure_admin` at startup to create the first admin. `AuthLimits` says
how much argon2 work runs at once and how many failed credentials are forgiven.
"""

from .deps import (
    Argon2Dep,
    CurrentUser,
    ModeDep,
    PoolDep,
    RoleGuard,
    SettingsDep,
    SocketGuard,
    ThrottleDep,
    authenticate_token,
    client_address,
    requires,
    route_table,
    socket_requires,
)
from .limits import AuthLimits, TooManyRequests
from .roles import ANY_ROLE, PUBLIC_ROUTES, Role
from .tokens import CredentialError
from .users import User, ensure_admin

__all__ = [
    "ANY_ROLE",
    "PUBLIC_ROUTES",
    "Argon2Dep",
    "AuthLimits",
    "CredentialError",
    "CurrentUser",
    "ModeDep",
    "PoolDep",
    "Role",
    "RoleGuard",
    "SettingsDep",
    "SocketGuard",
    "ThrottleDep",
    "TooManyRequests",
    "User",
    "authenticate_token",
    "client_address",
    "ensure_admin",
    "requires",
    "route_table",
    "socket_requires",
]
