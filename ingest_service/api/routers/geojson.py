"""The live map's GeoJSON: vehicles where they are now, trips with route and trail, trails.

(Skeleton: the endpoints arrive with issue 6; see docs/live-map.md for the contract.)
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/map", tags=["map"])
