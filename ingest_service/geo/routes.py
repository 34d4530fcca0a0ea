"""A trip's way: its planned route (a GeoJSON LineString) and its stops as they stand."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ROUTE_POSITIONS = 20_000


class RouteLine(BaseModel):
    """The planned route: a GeoJSON LineString of [lon, lat] positions, at least two."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["LineString"]
    coordinates: list[list[float]] = Field(min_length=2, max_length=MAX_ROUTE_POSITIONS)
    bbox: list[float] | None = None

    @field_validator("coordinates")
    @classmethod
    def _positions(cls, coords: list[list[float]]) -> list[list[float]]:
        for i, pos in enumerate(coords):
            if len(pos) not in (2, 3) or not all(math.isfinite(v) for v in pos):
                raise ValueError(
                    f"position {i} {pos} is not [lon, lat] (or [lon, lat, height]) in degrees"
                )
            lon, lat = pos[0], pos[1]
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(
                    f"position {i} [{lon}, {lat}] is out of range: GeoJSON positions are"
                    " [lon, lat], longitude first"
                )
        if all(p[:2] == coords[0][:2] for p in coords):
            raise ValueError("every position is the same point: a route needs to go somewhere")
        return coords


class StopOut(BaseModel):
    seq: int
    fence_id: int
    fence_name: str
    state: str = Field(description="pending, arriving, arrived or done")
    eta: datetime | None
    eta_earliest: datetime | None
    eta_latest: datetime | None
    eta_at: datetime | None = Field(description="the fix the ETA was computed from")
    arrived_at: datetime | None
    orders: list[str] = Field(description="the orders delivered at this stop")


async def read_stops(conn: AsyncConnection[Any], trip_id: str) -> list[StopOut]:
    """A trip's stops in order, with their state, ETA and orders."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT s.seq, s.fence_id, g.name AS fence_name, s.state, s.eta, s.eta_earliest,"
        " s.eta_latest, s.eta_at, s.arrived_at, COALESCE((SELECT array_agg(o.number"
        "   ORDER BY o.id) FROM orders o WHERE o.trip_id = s.trip_id AND o.stop_seq = s.seq),"
        "   '{}') AS orders"
        " FROM trip_stops s JOIN geofences g ON g.id = s.fence_id"
        " WHERE s.trip_id = %s ORDER BY s.seq",
        (trip_id,),
    )
    return [StopOut.model_validate(r) for r in await cur.fetchall()]
