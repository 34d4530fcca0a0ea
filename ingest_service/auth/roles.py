"""Who may do what: the roles, and the only routes anyone may call without logging in."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A job in the warehouse; each user has exactly one. Admin may call every route."""

    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    DOCK = "dock"
    DRIVER = "driver"
    SUPPLIER = "supplier"
    VIEWER = "viewer"


ANY_ROLE: tuple[Role, ...] = tuple(Role)

# (method, path) of every route that answers without credentials. Everything else must
# declare its roles with `requires(...)`; `create_app` refuses to start otherwise, so a new
# route cannot become public by forgetting a dependency.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/v1/auth/login"),
        ("GET", "/healthz"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/openapi.json"),
        # The customer's tracking page: the token is the credential (docs/notifications.md).
        ("GET", "/t/{token}"),
        ("GET", "/t/{token}/status"),
        ("GET", "/t/assets/{name}"),
    }
)


def allows(required: frozenset[Role], role: Role) -> bool:
    """Whether a user of `role` may call a route that requires one of `required`."""
    return role is Role.ADMIN or role in required
