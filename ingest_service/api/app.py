"""The HTTP API: `create_app` wires the routers, the database pool and the error format.

Every route is either in `PUBLIC_ROUTES` or guarded by `requires(...)`; the app refuses to
start otherwise. Errors are RFC 9457 problem documents whose `detail` says what to do.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import prometheus_client
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from dashboard import mount_dashboard
from ingest_service.auth import PUBLIC_ROUTES, AuthLimits, Role, TooManyRequests, route_table
from ingest_service.auth.limits import Argon2Gate, CredentialThrottle
from ingest_service.auth.tokens import VerifiedTokenCache
from ingest_service.live import Hub, Listener, LiveOptions
from ingest_service.notify.mailbox import Mailbox
from ingest_service.settings import ConfigError, Settings
from ingest_service.storage import StorageMode

from .routers import (
    analytics,
    auth,
    deliveries,
    demo_mail,
    devices,
    epcis,
    exceptions,
    fleet,
    geofences,
    geojson,
    health,
    inbound,
    labels,
    live,
    metrics,
    notification_admin,
    order_exports,
    orders,
    positions,
    products,
    quarantine,
    receiving,
    scans,
    tracking_page,
    trips,
    unmatched,
    users,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
# How long a request waits for a database connection before it gets a 503.
POOL_TIMEOUT_S = 5.0


def _version() -> str:
    try:
        return version("tracklane")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(
    *,
    settings: Settings,
    database_url: str,
    storage_mode: StorageMode,
    ingest_health: Callable[[], dict] | None = None,
    registry: prometheus_client.CollectorRegistry | None = None,
    auth_limits: AuthLimits | None = None,
    mailbox: Mailbox | None = None,
) -> FastAPI:
    """The API application; the database pool opens when the app starts serving."""
    limits = auth_limits or AuthLimits()
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        raise ConfigError(
            "create_app needs settings.secret_key to sign login sessions: set "
            "TRACKLANE_SECRET_KEY, or (for the demo) generate one with "
            "secrets.token_urlsafe(32) and pass Settings(secret_key=...)"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # open(wait=False): the API starts even while the database is down, so /healthz can
        # say so; requests that need it get a 503 until it is back.
        pool = AsyncConnectionPool(
            database_url,
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,  # survive a database restart
            timeout=POOL_TIMEOUT_S,
            name="api",
            open=False,
        )
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.database_check = health.DatabaseCheck(database_url)
        await app.state.database_check.open()
        app.state.argon2 = Argon2Gate(slots=limits.argon2_slots, wait_s=limits.argon2_wait_s)
        # The live stream: one LISTEN connection and one hub per process. Tests may set
        # app.state.live_options before starting the app to shorten its timings.
        app.state.live_options = getattr(app.state, "live_options", None) or LiveOptions()
        hub = app.state.live_hub = Hub(max_events=settings.live_event_queue)
        hub.metrics.register(app.state.registry)
        listener = Listener(database_url, hub, app.state.live_options)
        listener.start()
        log.info(
            "API: %d argon2 slots, %d database connections at most",
            limits.argon2_slots,
            POOL_MAX_SIZE,
        )
        try:
            yield
        finally:
            await listener.stop()
            hub.metrics.unregister()
            app.state.argon2.close()
            await app.state.database_check.close()
            await pool.close()

    app = FastAPI(
        title="Tracklane",
        version=_version(),
        description="Order tracking from edge scans and GPS: stored events, users and tokens.",
        docs_url="/docs",
        redoc_url=None,  # one docs page; PUBLIC_ROUTES lists exactly what is open
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.storage_mode = storage_mode
    app.state.ingest_health = ingest_health
    app.state.registry = registry or prometheus_client.REGISTRY
    app.state.token_cache = VerifiedTokenCache()
    app.state.throttle = CredentialThrottle(limits)

    app.include_router(health.router)
    app.include_router(metrics.router)
    for module in (
        auth,
        users,
        positions,
        scans,
        devices,
        quarantine,
        order_exports,  # before orders: /orders/export is not an order called "export"
        deliveries,  # before orders, like order_exports
        orders,
        labels,
        products,
        trips,
        fleet,
        geofences,
        exceptions,
        unmatched,
        geojson,
        live,
        notification_admin,
        inbound,
        receiving,
        epcis,
        analytics,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(tracking_page.router)  # /t/{token}: the customer's page, no prefix
    if mailbox is not None:  # the demo's SMTP sink (ingest_service/notify/mailbox.py)
        app.state.mailbox = mailbox
        app.include_router(demo_mail.router, prefix=API_PREFIX)
    _add_error_handlers(app)
    _check_every_route_is_guarded(app)
    _document_roles(app)
    # The dashboard's static files, at "/": a mount there must come after every route above,
    # or it would swallow them.
    mount_dashboard(
        app, tile_url=settings.map_tile_url, tile_attribution=settings.map_tile_attribution
    )
    return app


def _check_every_route_is_guarded(app: FastAPI) -> None:
    """Fail at startup if a route has neither a role guard nor a place in PUBLIC_ROUTES."""
    table = route_table(app)
    for key, roles in table.items():
        if key in PUBLIC_ROUTES and roles is not None:
            raise RuntimeError(f"{key} is both public and guarded; pick one")
        if key not in PUBLIC_ROUTES and roles is None:
            raise RuntimeError(
                f"{key} has no role guard: add dependencies=[Depends(requires(...))],"
                " or list it in PUBLIC_ROUTES if anyone may call it"
            )
    if missing := PUBLIC_ROUTES - table.keys():
        raise RuntimeError(f"PUBLIC_ROUTES lists routes the app does not have: {sorted(missing)}")


def _document_roles(app: FastAPI) -> None:
    """Add `x-roles` to each operation in /openapi.json, so integrators see who may call it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for (method, path), roles in route_table(app).items():
            operation = schema.get("paths", {}).get(path, {}).get(method.lower())
            if operation is not None and roles is not None:
                operation["x-roles"] = sorted({Role.ADMIN, *roles})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _problem(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo `input`: it may be the password that failed validation.
        errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        return _problem(422, "Invalid request", detail, errors=errors)

    @app.exception_handler(TooManyRequests)
    async def too_many(request: Request, exc: TooManyRequests) -> JSONResponse:
        response = _problem(429, "Too many requests", str(exc))
        response.headers["Retry-After"] = exc.retry_after
        return response

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable for %s %s: %s", request.method, request.url.path, exc)
        return _problem(
            503,
            "Database unavailable",
            "the database cannot be reached right now; retry in a few seconds, and if it "
            "persists check GET /healthz and the service log",
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        ref = secrets.token_hex(4)
        log.exception("unexpected error %s on %s %s", ref, request.method, request.url.path)
        return _problem(
            500,
            "Internal error",
            f"something went wrong on our side; the service log has the details under {ref}",
            ref=ref,
        )
