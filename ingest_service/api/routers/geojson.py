"""The live map's GeoJSON (docs/live-map.md): vehicles where they are now, one vehicle with
its trip, a vehicle's trail for replay, and a trip with its route, trail, stops and origin.

Read-only, for dispatchers and viewers. A map client reads these once, then follows the
changes on `/api/v1/live` and reads them again when the stream says `resync`. Coordinates
are GeoJSON's [lon, lat]. A vehicle's current trip is its trip in state loading or departed
(the one ingest follows); should it have two, the departed one, then the newest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, Field

from ingest_service.auth import ModeDep, PoolDep, Role, SettingsDep, requires
from ingest_service.dispatch.errors import Refused, as_http, utc
from ingest_service.geo.routes import StopOut, read_stops
from ingest_service.geo.trails import (
    DEFAULT_POINTS,
    MAX_POINTS,
    MAX_RANGE,
    Feature,
    FeatureCollection,
    read_trail,
    trail_feature,
)
from ingest_service.geo.trip_map import trip_map
from ingest_service.settings import Settings

router = APIRouter(prefix="/map", tags=["map"])
READERS = requires(Role.DISPATCHER, Role.VIEWER)
# GNSS speed wanders below ~0.5 m/s while parked; 1 m/s (3.6 km/h, walking pace) is moving.
MOVING_MPS = 1.0
ON_BOARD = ["loaded", "in_transit", "arriving", "arrived"]
Status = Literal["moving", "stopped", "stale"]


BBox = Annotated[
    str | None,
    Query(description="west,south,east,north in degrees", examples=["13.3,52.4,13.5,52.6"]),
]
MaxPoints = Annotated[
    int,
    Query(ge=2, le=MAX_POINTS, description="more fixes than this are averaged in time buckets"),
]

_STATUS = sql.SQL(
    "CASE WHEN s.last_fix_at < now() - %(stale_min)s * interval '1 minute' THEN 'stale'"
    " WHEN s.speed_mps >= %(moving)s THEN 'moving' ELSE 'stopped' END AS status"
)
_CURRENT_TRIP = sql.SQL(
    "LEFT JOIN LATERAL (SELECT t.* FROM trips t WHERE t.vehicle_id = v.id"
    " AND t.state IN ('loading', 'departed')"
    " ORDER BY t.state = 'departed' DESC, t.created_at DESC, t.id LIMIT 1) t ON true"
)
_VEHICLES = sql.SQL(
    "SELECT v.id AS vehicle_id, v.name, v.plate, s.lon, s.lat, s.heading_deg, s.speed_mps,"
    " s.last_fix_at, {status}, t.id AS trip_id, t.state AS trip_state,"
    " (SELECT count(*) FROM orders o WHERE o.trip_id = t.id AND o.state = ANY(%(on_board)s))"
    "   AS loads, n.seq, n.eta, n.eta_earliest, n.eta_latest, n.orders"
    " FROM vehicles v JOIN vehicle_state s ON s.vehicle_id = v.id {current_trip}"
    " LEFT JOIN LATERAL (SELECT st.seq, st.eta, st.eta_earliest, st.eta_latest,"
    "   ARRAY(SELECT o.number FROM orders o WHERE o.trip_id = st.trip_id"
    "     AND o.stop_seq = st.seq ORDER BY o.id) AS orders"
    "   FROM trip_stops st WHERE st.trip_id = t.id AND st.state IN ('pending', 'arriving')"
    "   ORDER BY st.seq LIMIT 1) n ON true"
    " WHERE v.active AND s.last_fix_at IS NOT NULL"
    " AND (%(west)s::float8 IS NULL OR s.lat BETWEEN %(south)s AND %(north)s AND"
    "   CASE WHEN %(west)s <= %(east)s THEN s.lon BETWEEN %(west)s AND %(east)s"
    "   ELSE s.lon >= %(west)s OR s.lon <= %(east)s END)"
    " ORDER BY v.id"
).format(status=_STATUS, current_trip=_CURRENT_TRIP)
_VEHICLE = sql.SQL(
    "SELECT v.id, v.name, v.plate, v.active, s.lon, s.lat, s.heading_deg, s.speed_mps,"
    " s.last_fix_at, {status}, t.id AS trip_id, t.state AS trip_state, t.driver,"
    " t.departed_at FROM vehicles v LEFT JOIN vehicle_state s ON s.vehicle_id = v.id"
    " {current_trip} WHERE v.id = %(vehicle)s"
).format(status=_STATUS, current_trip=_CURRENT_TRIP)


class NextStop(BaseModel):
    seq: int
    eta: datetime | None
    eta_earliest: datetime | None
    eta_latest: datetime | None
    orders: list[str] = Field(description="delivered at this stop")


class VehicleProps(BaseModel):
    vehicle_id: str
    name: str
    plate: str | None
    heading_deg: float | None
    speed_mps: float | None
    last_fix_at: datetime
    status: Status = Field(
        description=f"stale: no fix for stale_tracker_min; moving: ≥ {MOVING_MPS} m/s"
    )
    trip_id: str | None = Field(description="its trip loading or on the road")
    trip_state: str | None
    loads: int = Field(description="orders of that trip on board (loaded to arrived)")
    next_stop: NextStop | None = Field(description="the first stop not yet arrived at")


class LastFix(BaseModel):
    lon: float
    lat: float
    speed_mps: float | None
    heading_deg: float | None
    at: datetime
    status: Status


class MapOrder(BaseModel):
    number: str
    state: str
    stop_seq: int | None
    customer: str


class MapTrip(BaseModel):
    id: str
    state: str
    driver: str | None
    departed_at: datetime | None
    orders: list[MapOrder] = Field(description="planned on it and not cancelled, by stop")
    stops: list[StopOut]


class VehicleOut(BaseModel):
    id: str
    name: str
    plate: str | None
    active: bool
    last_fix: LastFix | None
    trip: MapTrip | None = Field(description="its trip loading or on the road")


def _status_params(settings: Settings) -> dict[str, float]:
    return {"stale_min": settings.stale_tracker_min, "moving": MOVING_MPS}


def _no_vehicle(vehicle_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND, f"no vehicle {vehicle_id}: GET /api/v1/vehicles lists them"
    )


def _bbox(text: str) -> dict[str, float]:
    """`west,south,east,north` in degrees; west > east crosses the antimeridian (RFC 7946)."""
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        raise Refused(f"bbox {text!r} is not west,south,east,north in degrees") from None
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise Refused(
            f"bbox {text!r} is out of range: longitudes within ±180, latitudes within ±90,"
            " south before north (west,south,east,north)"
        )
    return {"west": west, "south": south, "east": east, "north": north}


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=1)
    if end <= start:
        raise Refused(
            f"`to` ({utc(end)}) must be after `from` ({utc(start)}): swap them, or leave"
            " `from` out for the hour before `to`"
        )
    if end - start > MAX_RANGE:
        raise Refused(
            f"a trail covers at most {MAX_RANGE.days} days, not {end - start}: ask for"
            " shorter ranges one after another"
        )
    return start, end


@router.get("/vehicles", dependencies=[Depends(READERS)])
async def vehicles(
    pool: PoolDep, settings: SettingsDep, bbox: BBox = None
) -> FeatureCollection[VehicleProps]:
    """Each active vehicle with a fix, as a Point where it was last seen, with its status,
    current trip, orders on board and next stop; only those inside `bbox` if given.
    `status` is `stale` when its last fix is older than `stale_tracker_min` minutes, else
    `moving` at 1 m/s or more (slower is GNSS jitter at a standstill), else `stopped`."""
    with as_http():
        box = _bbox(bbox) if bbox is not None else dict.fromkeys(("west", "south", "east", "north"))
    params = {**box, **_status_params(settings), "on_board": ON_BOARD}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(_VEHICLES, params)
        rows = await cur.fetchall()
    features = []
    for r in rows:
        next_stop = None if r["seq"] is None else NextStop.model_validate(r)
        point = {"type": "Point", "coordinates": [r["lon"], r["lat"]]}
        props = VehicleProps.model_validate({**r, "next_stop": next_stop})
        features.append(Feature(id=r["vehicle_id"], geometry=point, properties=props))
    return FeatureCollection(features=features)


@router.get("/vehicles/{vehicle_id}", dependencies=[Depends(READERS)])
async def vehicle(vehicle_id: str, pool: PoolDep, settings: SettingsDep) -> VehicleOut:
    """One vehicle (in service or not): its last fix, its current trip with the orders on
    it and every stop's state and ETA."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(_VEHICLE, {"vehicle": vehicle_id, **_status_params(settings)})
        v = await cur.fetchone()
        if v is None:
            raise _no_vehicle(vehicle_id)
        trip = None
        if v["trip_id"] is not None:
            await cur.execute(
                "SELECT o.number, o.state, o.stop_seq, c.name AS customer FROM orders o"
                " JOIN customers c ON c.id = o.customer_id"
                " WHERE o.trip_id = %s AND o.state <> 'cancelled'"
                " ORDER BY o.stop_seq NULLS LAST, o.id",
                (v["trip_id"],),
            )
            orders = await cur.fetchall()
            trip = MapTrip.model_validate(
                {**v, "id": v["trip_id"], "state": v["trip_state"], "orders": orders,
                 "stops": await read_stops(conn, v["trip_id"])}
            )  # fmt: skip
    fix = None
    if v["last_fix_at"] is not None:
        fix = LastFix.model_validate({**v, "at": v["last_fix_at"]})
    return VehicleOut.model_validate({**v, "last_fix": fix, "trip": trip})


@router.get("/vehicles/{vehicle_id}/trail", dependencies=[Depends(READERS)])
async def trail(
    vehicle_id: str,
    pool: PoolDep,
    mode: ModeDep,
    start: Annotated[
        AwareDatetime | None, Query(alias="from", description="default: to - 1 h")
    ] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="default: now")] = None,
    max_points: MaxPoints = DEFAULT_POINTS,
) -> Feature[dict[str, Any]]:
    """The vehicle's fixes with `from <= time < to` (at most 31 days), for replay: a
    LineString with `properties.times`, one time per coordinate. More fixes than
    `max_points` are averaged into equal time buckets `bucket_s` wide (null when not
    downsampled), each stamped with its bucket's start. No fix in the range: `geometry`
    null and `points` 0 (a LineString needs two positions); a single fix: a Point."""
    with as_http():
        start, end = _range(start, end)
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM vehicles WHERE id = %s", (vehicle_id,))
        if await cur.fetchone() is None:
            raise _no_vehicle(vehicle_id)
        found = await read_trail(conn, mode, vehicle_id, start, end, max_points)
    return trail_feature(found, vehicle_id, vehicle_id=vehicle_id, **{"from": start, "to": end})


@router.get("/trips/{trip_id}", dependencies=[Depends(READERS)])
async def trip(
    trip_id: str, pool: PoolDep, mode: ModeDep, max_points: MaxPoints = DEFAULT_POINTS
) -> FeatureCollection[dict[str, Any]]:
    """The trip drawn: the planned route (`kind: "route"`, left out when none is planned),
    the trail travelled since it departed until it completed or now (`kind: "trail"`, as
    the trail endpoint gives it), each stop as a Point at its fence's centre with its state,
    ETA and orders (`kind: "stop"`), and the origin fence as stored (`kind: "origin"`): a
    polygon, or a circle as its centre Point with `properties.radius_m`."""
    async with pool.connection() as conn:
        with as_http():
            return await trip_map(conn, mode, trip_id, max_points)
