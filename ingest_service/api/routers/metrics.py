"""Prometheus metrics, for a scraper holding an API token of a viewer (or admin) user."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest_service.auth import Role, requires

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    dependencies=[Depends(requires(Role.VIEWER))],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
