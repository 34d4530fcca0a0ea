"""What a live client asked to see, and whether a notification row is part of it.

Pure: values in, decisions out. The subscription rules are the contract's table in
docs/live-map.md: for each stream only some keys apply, and a row passes when none of them
is given or when any given one matches (a viewport plus a followed vehicle outside it).
Vehicle positions come many at a time, so the bounding box is checked with numpy over a
whole batch at once (`VehicleBatch`), not row by row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ingest_service.auth.roles import Role


class Stream(StrEnum):
    VEHICLES = "vehicles"
    ORDERS = "orders"
    EXCEPTIONS = "exceptions"
    SCANS = "scans"
    ETAS = "etas"
    GATEWAYS = "gateways"


# The notification kind `k` (migration 0005_live.sql) and the stream that carries it.
STREAM_OF_KIND: dict[str, Stream] = {
    "vehicle": Stream.VEHICLES,
    "order": Stream.ORDERS,
    "exception": Stream.EXCEPTIONS,
    "scan": Stream.SCANS,
    "eta": Stream.ETAS,
    "gateway": Stream.GATEWAYS,
}

# Who may watch what. Roles not listed (driver, supplier) may not open the stream at all.
_ALL = tuple(Stream)
STREAMS_BY_ROLE: dict[Role, tuple[Stream, ...]] = {
    Role.ADMIN: _ALL,
    Role.DISPATCHER: _ALL,
    Role.VIEWER: _ALL,
    Role.DOCK: (Stream.SCANS, Stream.GATEWAYS),
}

MAX_KEYS = 1000  # followed vehicles, orders or doors in one subscription
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Door = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^/]+/[^/]+$")]


def streams_for(role: Role) -> tuple[Stream, ...]:
    """The streams a role may watch; empty for roles that may not watch at all."""
    return STREAMS_BY_ROLE.get(role, ())


class Subscribe(BaseModel):
    """A client's `subscribe` message; every key is optional and each message replaces the last.

    `bbox` is [west, south, east, north] in degrees; west > east spans the antimeridian.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["subscribe"]
    streams: tuple[Stream, ...] | None = None
    bbox: tuple[float, float, float, float] | None = None
    vehicles: frozenset[Name] | None = Field(default=None, max_length=MAX_KEYS)
    orders: frozenset[Name] | None = Field(default=None, max_length=MAX_KEYS)
    trip: Name | None = None
    doors: frozenset[Door] | None = Field(default=None, max_length=MAX_KEYS)

    @model_validator(mode="after")
    def _bbox_in_range(self) -> Subscribe:
        if self.bbox is not None:
            west, south, east, north = self.bbox
            if not all(-180 <= x <= 180 for x in (west, east)):
                raise ValueError("bbox: west and east must be longitudes in [-180, 180]")
            if not (-90 <= south <= north <= 90):
                raise ValueError("bbox: need -90 <= south <= north <= 90 (latitudes)")
        return self


@dataclass(frozen=True)
class Filter:
    """The effective subscription: the streams resolved against the role, keys as given."""

    streams: frozenset[Stream]
    bbox: tuple[float, float, float, float] | None = None
    vehicles: frozenset[str] | None = None
    orders: frozenset[str] | None = None
    trip: str | None = None
    doors: frozenset[str] | None = None

    def describe(self) -> dict[str, Any]:
        """The filter as the `subscribed` answer shows it (sorted lists, None when not set)."""
        return {
            "streams": [s.value for s in Stream if s in self.streams],
            "bbox": list(self.bbox) if self.bbox is not None else None,
            "vehicles": sorted(self.vehicles) if self.vehicles is not None else None,
            "orders": sorted(self.orders) if self.orders is not None else None,
            "trip": self.trip,
            "doors": sorted(self.doors) if self.doors is not None else None,
        }

    @property
    def follows_all_vehicles(self) -> bool:
        return self.bbox is None and self.vehicles is None and self.trip is None


class NotAllowed(ValueError):
    """A subscription names a stream the user's role may not watch."""


def resolve(message: Subscribe, role: Role) -> Filter:
    """The effective filter of `message` for a user of `role`; raises NotAllowed."""
    allowed = streams_for(role)
    if message.streams is None:
        streams = frozenset(allowed)
    else:
        refused = sorted(s.value for s in message.streams if s not in allowed)
        if refused:
            raise NotAllowed(
                f"role {role} may not watch {', '.join(refused)}; it may watch "
                f"{', '.join(s.value for s in allowed)}"
            )
        streams = frozenset(message.streams)
    return Filter(
        streams=streams,
        bbox=message.bbox,
        vehicles=message.vehicles,
        orders=message.orders,
        trip=message.trip,
        doors=message.doors,
    )


def default_filter(role: Role) -> Filter:
    """What a client sees before its first `subscribe`: everything its role may watch."""
    return Filter(streams=frozenset(streams_for(role)))


def in_bbox(lat: float, lon: float, bbox: tuple[float, float, float, float]) -> bool:
    """One position against a bbox (the reference rule `VehicleBatch.select` vectorises)."""
    west, south, east, north = bbox
    in_lon = west <= lon <= east if west <= east else (lon >= west or lon <= east)
    return south <= lat <= north and in_lon


def _any_given(*checks: tuple[Any, bool]) -> bool:
    """True when no key is given, or when any given key matched."""
    given = [matched for key, matched in checks if key is not None]
    return not given or any(given)


def matches(stream: Stream, row: Mapping[str, Any], f: Filter) -> bool:
    """Whether one notification row of `stream` passes filter `f` (the contract's table)."""
    if stream not in f.streams:
        return False
    if stream is Stream.VEHICLES:
        lat, lon = row.get("lat"), row.get("lon")
        return _any_given(
            (f.bbox, f.bbox is not None and lat is not None and in_bbox(lat, lon, f.bbox)),
            (f.vehicles, f.vehicles is not None and row.get("vehicle_id") in f.vehicles),
            (f.trip, row.get("trip_id") == f.trip),
        )
    if stream is Stream.ORDERS:
        return _any_given(
            (f.orders, f.orders is not None and row.get("number") in f.orders),
            (f.trip, row.get("trip_id") == f.trip),
        )
    if stream is Stream.EXCEPTIONS:
        return _any_given(
            (f.orders, f.orders is not None and row.get("order_number") in f.orders),
            (f.vehicles, f.vehicles is not None and row.get("vehicle_id") in f.vehicles),
            (f.trip, row.get("trip_id") == f.trip),
        )
    if stream is Stream.ETAS:
        return _any_given(
            (f.trip, row.get("trip_id") == f.trip),
            (f.vehicles, f.vehicles is not None and row.get("vehicle_id") in f.vehicles),
        )
    if stream is Stream.SCANS:
        door = f"{row.get('site')}/{row.get('door')}"
        return _any_given((f.doors, f.doors is not None and door in f.doors))
    return True  # gateways: no keys apply


@dataclass
class VehicleBatch:
    """Positions of one fan-out round, newest per vehicle, with numpy columns for bbox checks.

    `items` maps vehicle id to the item's serialised JSON, made once and shared by every
    client; `select` picks, for one filter, the ids that pass, at C speed for the bbox.
    """

    items: dict[str, str]
    ids: list[str]
    lat: np.ndarray
    lon: np.ndarray
    by_trip: dict[str, list[str]] = field(default_factory=dict)
    id_array: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    item_array: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    @classmethod
    def build(cls, rows: Mapping[str, tuple[Mapping[str, Any], str]]) -> VehicleBatch:
        """From {vehicle_id: (row, serialised item)}."""
        ids = list(rows)
        by_trip: dict[str, list[str]] = {}
        for vid, (row, _) in rows.items():
            if (trip := row.get("trip_id")) is not None:
                by_trip.setdefault(trip, []).append(vid)
        # None (no fix) becomes NaN, which no bbox contains.
        lat = np.array([rows[v][0].get("lat") for v in ids], dtype=np.float64)
        lon = np.array([rows[v][0].get("lon") for v in ids], dtype=np.float64)
        return cls(
            items={v: rows[v][1] for v in ids},
            ids=ids,
            lat=lat,
            lon=lon,
            by_trip=by_trip,
            id_array=np.array(ids, dtype=object),
            item_array=np.array([rows[v][1] for v in ids], dtype=object),
        )

    def select(self, f: Filter) -> dict[str, str]:
        """The items that pass `f` (the contract's `vehicles` row: bbox, vehicles, trip)."""
        if Stream.VEHICLES not in f.streams:
            return {}
        if f.follows_all_vehicles:
            return self.items
        chosen: dict[str, str] = {}
        if f.bbox is not None:
            inside = self.bbox_mask(f.bbox)
            chosen = dict(zip(self.id_array[inside].tolist(),
                              self.item_array[inside].tolist(), strict=True))  # fmt: skip
        if f.vehicles is not None:
            chosen.update(_pick(self.items, f.vehicles))
        if f.trip is not None:
            chosen.update(_pick(self.items, self.by_trip.get(f.trip, ())))
        return chosen

    def bbox_mask(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        west, south, east, north = bbox
        lat, lon = self.lat, self.lon
        in_lon = (lon >= west) & (lon <= east) if west <= east else (lon >= west) | (lon <= east)
        return in_lon & (lat >= south) & (lat <= north)


def _pick(items: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    return {k: items[k] for k in keys if k in items}
