"""The live stream: an authenticated WebSocket at /api/v1/live (docs/live-map.md).

(Skeleton: the endpoint arrives with issue 6.)
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["live"])
