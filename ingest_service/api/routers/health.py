"""`/healthz` for load balancers and people: is the database reachable, is ingest running.

Public, so it says only what an operator needs: no counts, no hosts, no versions, no settings
(the storage mode's versions are in the service log). Its database check has a connection of
its own, so a flood of requests that hold the API's pool cannot make it report the database
down, and its answer is reused for a second, so a flood of health checks cannot load the
database either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

from fastapi import APIRouter, Request, Response, status
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

DB_CHECK_TIMEOUT_S = 2.0
# Load balancers poll every few seconds; within one second an answer is still news.
DB_CHECK_REUSE_S = 1.0
NO_INGEST = "not running in this process"


class Storage(BaseModel):
    mode: Literal["timescaledb", "postgresql"]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    storage: Storage
    ingest: dict[str, Any]


class DatabaseCheck:
    """Checks the database over a one-connection pool of its own; `open` it in the lifespan."""

    def __init__(self, database_url: str) -> None:
        self._pool = AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=1,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            timeout=DB_CHECK_TIMEOUT_S,
            name="health",
            open=False,
        )
        self._lock = asyncio.Lock()
        self._last: tuple[float, str] | None = None

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def result(self) -> str:
        """ "ok", or an error fit for anonymous callers; at most one query per second."""
        async with self._lock:  # concurrent callers share one query
            if self._last is not None and time.monotonic() - self._last[0] < DB_CHECK_REUSE_S:
                return self._last[1]
            result = await self._query()
            self._last = (time.monotonic(), result)
            return result

    async def _query(self) -> str:
        try:
            # The pool's timeout covers getting a connection; this one a server that hangs.
            async with asyncio.timeout(2 * DB_CHECK_TIMEOUT_S):
                async with self._pool.connection() as conn:
                    await conn.execute("SELECT 1")
        except Exception as err:
            # The full error (with host and port) goes to the log, not to anonymous callers.
            log.warning("health check: database unreachable: %s", err or type(err).__name__)
            return f"error: database unreachable ({type(err).__name__}); see the service log"
        return "ok"


def _ingest(request: Request) -> dict[str, Any]:
    probe = request.app.state.ingest_health
    if probe is None:
        return {"status": NO_INGEST}
    try:
        report = dict(probe())
    except Exception as err:
        log.exception("health check: ingest probe failed")
        return {"status": "error", "error": type(err).__name__}
    # States only (connected, ok, ...): numbers are counts and throughput, which tell an
    # anonymous caller how much business goes through; they are in /metrics, behind a role.
    return {k: v for k, v in report.items() if isinstance(v, str | bool) or v is None}


@router.get("/healthz")
async def healthz(request: Request, response: Response) -> Health:
    """ "ok" with HTTP 200, or "degraded" with HTTP 503 so a load balancer stops routing here.

    Degraded means the database is unreachable, or the ingest probe failed or reported a
    `status` other than "ok". A broker outage alone does not take the API out of a load
    balancer: reads still work; the probe decides whether to report it as `status`.
    """
    check: DatabaseCheck = request.app.state.database_check
    database = await check.result()
    ingest = _ingest(request)
    ingest_ok = ingest.get("status", "ok") in ("ok", NO_INGEST)
    healthy = database == "ok" and ingest_ok
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if healthy else "degraded",
        database=database,
        storage=Storage(mode=request.app.state.storage_mode.name),
        ingest=ingest,
    )
