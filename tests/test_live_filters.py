"""The live stream's pure parts: subscription rules (as properties), client queues, the hub.

The contract's table (docs/live-map.md) is restated below as data, `APPLIES`; the filter
must agree with it for any row and any subscription, and the vectorised bbox check with the
row-by-row one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest_service.auth import Role
from ingest_service.live import ClientQueue, Hub, Stream, Subscribe
from ingest_service.live.client_queue import MAX_LAYERS
from ingest_service.live.filters import (
    Filter,
    NotAllowed,
    VehicleBatch,
    default_filter,
    in_bbox,
    matches,
    resolve,
)

# Which subscription keys apply to which stream, and what each key tests on a row.
APPLIES: dict[Stream, tuple[str, ...]] = {
    Stream.VEHICLES: ("bbox", "vehicles", "trip"),
    Stream.ORDERS: ("orders", "trip"),
    Stream.EXCEPTIONS: ("orders", "vehicles", "trip"),
    Stream.ETAS: ("trip", "vehicles"),
    Stream.SCANS: ("doors",),
    Stream.GATEWAYS: (),
}


def key_matches(key: str, stream: Stream, row: dict[str, Any], f: Filter) -> bool:
    if key == "bbox":
        assert f.bbox is not None
        return in_bbox(row["lat"], row["lon"], f.bbox)
    if key == "vehicles":
        return row["vehicle_id"] in (f.vehicles or ())
    if key == "trip":
        return row["trip_id"] == f.trip
    if key == "orders":
        number = row["number"] if stream is Stream.ORDERS else row["order_number"]
        return number in (f.orders or ())
    assert key == "doors"
    return f"{row['site']}/{row['door']}" in (f.doors or ())


names = st.sampled_from(["a", "b", "c"])
lats = st.floats(-90, 90)
lons = st.floats(-180, 180)


@st.composite
def bboxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    south, north = sorted((draw(lats), draw(lats)))
    return draw(lons), south, draw(lons), north  # west > east: across the antimeridian


rows = st.fixed_dictionaries(
    {
        "vehicle_id": names,
        "trip_id": st.none() | names,
        "number": names,
        "order_number": st.none() | names,
        "site": names,
        "door": names,
        "lat": lats,
        "lon": lons,
    }
)
filters = st.builds(
    Filter,
    streams=st.frozensets(st.sampled_from(Stream)),
    bbox=st.none() | bboxes(),
    vehicles=st.none() | st.frozensets(names),
    orders=st.none() | st.frozensets(names),
    trip=st.none() | names,
    doors=st.none() | st.frozensets(st.builds(lambda s, d: f"{s}/{d}", names, names)),
)


@given(stream=st.sampled_from(Stream), row=rows, f=filters)
def test_a_row_passes_when_no_applicable_key_is_given_or_any_given_one_matches(
    stream: Stream, row: dict[str, Any], f: Filter
) -> None:
    given_keys = [k for k in APPLIES[stream] if getattr(f, k) is not None]
    expected = stream in f.streams and (
        not given_keys or any(key_matches(k, stream, row, f) for k in given_keys)
    )
    assert matches(stream, row, f) == expected


@given(vehicles=st.lists(rows, max_size=30), f=filters)
def test_the_vectorised_vehicle_selection_agrees_with_the_row_rule(
    vehicles: list[dict[str, Any]], f: Filter
) -> None:
    by_id = {f"v{i}": {**r, "vehicle_id": f"v{i}"} for i, r in enumerate(vehicles)}
    if f.vehicles is not None:  # follow some of these ids too
        f = Filter(**{**f.__dict__, "vehicles": frozenset(f"v{i}" for i in range(0, 30, 3))})
    batch = VehicleBatch.build({v: (r, json.dumps(r)) for v, r in by_id.items()})
    chosen = batch.select(f)
    assert set(chosen) == {v for v, r in by_id.items() if matches(Stream.VEHICLES, r, f)}
    assert all(chosen[v] == json.dumps(by_id[v]) for v in chosen)


@given(lon=lons, lat=st.floats(-10, 10))
def test_a_bbox_across_the_antimeridian_holds_both_edges(lon: float, lat: float) -> None:
    pacific = (170.0, -10.0, -170.0, 10.0)
    assert in_bbox(lat, lon, pacific) == (lon >= 170 or lon <= -170)


@given(role=st.sampled_from(Role), stream=st.sampled_from(Stream), row=rows)
def test_before_subscribing_a_client_sees_all_its_role_may(
    role: Role, stream: Stream, row: dict[str, Any]
) -> None:
    allowed = {Stream.SCANS, Stream.GATEWAYS} if role is Role.DOCK else set(Stream)
    if role in (Role.DRIVER, Role.SUPPLIER):
        allowed = set()
    assert matches(stream, row, default_filter(role)) == (stream in allowed)


@given(box=bboxes())
def test_valid_bboxes_are_accepted_and_upside_down_ones_refused(
    box: tuple[float, float, float, float],
) -> None:
    assert Subscribe(type="subscribe", bbox=box).bbox == box
    west, south, east, north = box
    if south < north:
        with pytest.raises(ValidationError, match="south <= north"):
            Subscribe(type="subscribe", bbox=(west, north, east, south))


def test_subscriptions_are_checked_against_the_role() -> None:
    message = Subscribe.model_validate({"type": "subscribe", "doors": ["wh1/door-3"]})
    assert resolve(message, Role.DOCK).streams == {Stream.SCANS, Stream.GATEWAYS}
    assert resolve(message, Role.VIEWER).describe() == {
        "streams": [s.value for s in Stream],
        "bbox": None,
        "vehicles": None,
        "orders": None,
        "trip": None,
        "doors": ["wh1/door-3"],
    }
    with pytest.raises(NotAllowed, match="dock may not watch etas, vehicles"):
        resolve(Subscribe(type="subscribe", streams=("vehicles", "etas")), Role.DOCK)
    for bad in [{"colour": "red"}, {"doors": ["door-3"]}, {"bbox": [0, 0, 200, 1]}]:
        with pytest.raises(ValidationError):
            Subscribe.model_validate({"type": "subscribe", **bad})


# --- the per-client queue -----------------------------------------------------------------


def test_a_client_queue_keeps_one_position_per_vehicle() -> None:
    q = ClientQueue(role=Role.VIEWER, username="v", max_events=10)
    for i in range(100):  # a client that never flushes: layers are merged as they pile up
        q.add_vehicles({f"truck-{n}": f'{{"n":{n},"i":{i}}}' for n in range(3)})
        assert len(q._layers) <= MAX_LAYERS + 1
    assert len(q.vehicles) == 3
    (frame,) = q.take_frames(now_ms=7)
    assert json.loads(frame) == {
        "type": "vehicles",
        "items": [{"n": n, "i": 99} for n in range(3)],
        "sent_at": 7,
    }
    assert q.metrics.items_coalesced == 297
    assert not q.has_frames


def test_a_client_that_keeps_up_frames_the_shared_batch_without_copying_it() -> None:
    q = ClientQueue(role=Role.VIEWER, username="v", max_events=10)
    shared = {"truck-1": '{"n":1}'}
    q.add_vehicles(shared)
    assert q.vehicles is shared
    q.take_frames()
    assert shared == {"truck-1": '{"n":1}'} and q.metrics.items_coalesced == 0


def test_a_full_event_queue_drops_the_oldest_and_asks_for_a_resync() -> None:
    q = ClientQueue(role=Role.VIEWER, username="v", max_events=10)
    for i in range(25):
        q.add_event(Stream.EXCEPTIONS, f'{{"id":{i}}}')
    q.add_event(Stream.SCANS, '{"id":"s"}')
    assert q.metrics.items_dropped == 16 and len(q.events) == 10
    resync, exceptions, scans = (json.loads(m) for m in q.take_frames(now_ms=1))
    assert resync["type"] == "resync" and resync["dropped"] == 16
    assert [e["id"] for e in exceptions["items"]] == list(range(16, 25))
    assert scans["items"] == [{"id": "s"}]
    assert q.take_frames() == []


# --- the hub ------------------------------------------------------------------------------


def _note(kind: str, rows: list[dict[str, Any]], at: int = 1) -> str:
    return json.dumps({"k": kind, "at": at, "rows": rows})


def _fix(vid: str, when: str, lat: float = 0.0, lon: float = 0.0) -> dict[str, Any]:
    return {"vehicle_id": vid, "lat": lat, "lon": lon, "last_fix_at": when, "trip_id": None}


def test_the_hub_keeps_the_newest_fix_and_filters_per_client() -> None:
    hub = Hub(max_events=10)
    everything = hub.connect(role=Role.ADMIN, username="a")
    berlin = hub.connect(role=Role.VIEWER, username="v")
    berlin.filter = Filter(streams=frozenset(Stream), bbox=(13.0, 52.0, 14.0, 53.0))
    dock = hub.connect(role=Role.DOCK, username="d")
    hub.publish([
        _note("vehicle", [_fix("t1", "2026-01-01T00:00:02.000Z", 52.5, 13.5)], at=5),
        _note("vehicle", [_fix("t1", "2026-01-01T00:00:01.000Z", 0, 0)]),  # older: ignored
        _note("vehicle", [_fix("t2", "2026-01-01T00:00:01.000Z", 48, 11)]),
        _note("scan", [{"site": "wh1", "door": "door-3", "code": "X"}]),
        "not json", _note("weather", [{}]),  # not ours: skipped
    ])  # fmt: skip
    t1 = json.loads(everything.vehicles["t1"])
    assert (t1["lat"], t1["at"]) == (52.5, 5)
    assert set(berlin.vehicles) == {"t1"}
    assert dock.vehicles == {} and [s for s, _ in dock.events] == [Stream.SCANS]
    hub.disconnect(dock)
    hub.resync_all("test")
    assert everything.resync_reason == berlin.resync_reason == "test"
    assert dock.resync_reason is None
