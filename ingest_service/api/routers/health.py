"""`/healthz` for load balancers and people: is the database reachable, is ingest running.

Public, so it says only what an operator needs: no counts, no hosts, no settings.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

DB_CHECK_TIMEOUT_S = 2.0
NO_INGEST = "not running in this process"


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    storage: dict[str, str | None]
    ingest: dict[str, Any]


async def _database(request: Request) -> str:
    try:
        async with request.app.state.pool.connection(timeout=DB_CHECK_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
    except Exception as err:
        # The full error (with host and port) goes to the log, not to anonymous callers.
        log.warning("health check: database unreachable: %s", err)
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
    database = await _database(request)
    ingest = _ingest(request)
    ingest_ok = ingest.get("status", "ok") in ("ok", NO_INGEST)
    healthy = database == "ok" and ingest_ok
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if healthy else "degraded",
        database=database,
        storage=request.app.state.storage_mode.as_dict(),
        ingest=ingest,
    )
