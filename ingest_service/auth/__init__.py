"""Authentication and roles: argon2 passwords, session JWTs, API tokens, route guards.

Use `requires(Role.X, ...)` on every route, `CurrentUser` / `PoolDep` / `Argon2Dep` as
parameter types, and `ensure_admin` at startup to create the first admin. `AuthLimits` says
how much argon2 work runs at once and how many failed credentials are forgiven.
"""

from .deps import (
    Argon2Dep,
    CurrentUser,
    PoolDep,
    RoleGuard,
    SettingsDep,
    ThrottleDep,
    client_address,
    requires,
    route_table,
)
from .limits import AuthLimits, TooManyRequests
from .roles import ANY_ROLE, PUBLIC_ROUTES, Role
from .users import User, ensure_admin

__all__ = [
    "ANY_ROLE",
    "PUBLIC_ROUTES",
    "Argon2Dep",
    "AuthLimits",
    "CurrentUser",
    "PoolDep",
    "Role",
    "RoleGuard",
    "SettingsDep",
    "ThrottleDep",
    "TooManyRequests",
    "User",
    "client_address",
    "ensure_admin",
    "requires",
    "route_table",
]
