"""Authentication and roles: argon2 passwords, session JWTs, API tokens, route guards.

Use `requires(Role.X, ...)` on every route, `CurrentUser` / `PoolDep` as parameter types,
and `ensure_admin` at startup to create the first admin.
"""

from .deps import CurrentUser, PoolDep, RoleGuard, SettingsDep, requires, route_table
from .roles import ANY_ROLE, PUBLIC_ROUTES, Role
from .users import User, ensure_admin

__all__ = [
    "ANY_ROLE",
    "PUBLIC_ROUTES",
    "CurrentUser",
    "PoolDep",
    "Role",
    "RoleGuard",
    "SettingsDep",
    "User",
    "ensure_admin",
    "requires",
    "route_table",
]
