"""A trip ends where it began: back in its origin fence, every stop reached, it is completed.

The rule alone (`orders.trips.complete_on_return`), then end to end with a real broker and
database, on test_tracking.py's trip: truck-1 leaves the warehouse, makes stop 1 and stop 2,
and drives home. Only the confirmed entry into the origin fence after the departure, with
every stop arrived or done, completes the trip, at the entry's time.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest

from ingest_service.tracking import open_stale_trackers
from orders.trips import Completed, NotCompleted, StopState, TripState, complete_on_return
from tests import test_tracking
from tests.mqtt_helpers import wait_until
from tests.test_tracking import (
    STOP_1,
    STOP_2,
    TRIP,
    WAREHOUSE,
    consumer,
    drive,
    first_time,
    moves,
    positions,
    rows,
    send,
)

ARRIVED, DONE, PENDING = StopState.ARRIVED, StopState.DONE, StopState.PENDING
HOME = [("drive", WAREHOUSE, 15.0), ("dwell", WAREHOUSE, 120)]

# test_tracking.py's fixture: trip T1, truck-1 loading in wh1, stop 1 (SO-1), stop 2 (SO-2).
trip = test_tracking.trip


@pytest.mark.parametrize(
    ("state", "departed", "stops", "entered", "why"),
    [
        (TripState.LOADING, None, [(1, PENDING)], 50.0, "the trip is loading, not departed"),
        (TripState.COMPLETED, 10.0, [(1, DONE)], 50.0, "the trip is completed, not departed"),
        (TripState.DEPARTED, None, [(1, DONE)], 50.0, "no departure time"),
        (TripState.DEPARTED, 60.0, [(1, DONE)], 50.0, "before the trip departed"),
        (TripState.DEPARTED, 50.0, [(1, DONE)], 50.0, "before the trip departed"),
        (TripState.DEPARTED, 10.0, [(1, DONE), (2, PENDING), (3, StopState.ARRIVING)], 50.0,
         "stop(s) 2, 3 not reached"),
    ],
)  # fmt: skip
def test_the_rule_refuses_with_its_reason(state, departed, stops, entered, why) -> None:
    end = complete_on_return(state, departed, stops, entered)
    assert isinstance(end, NotCompleted) and not end.completed
    assert why in end.reason


def test_the_rule_completes_a_departed_trip_back_with_every_stop_reached() -> None:
    assert complete_on_return(TripState.DEPARTED, 10.0, [(1, ARRIVED), (2, DONE)], 50.0) == (
        Completed(50.0)
    )
    assert complete_on_return(TripState.DEPARTED, 10.0, [], 11.0) == Completed(11.0)


def trip_rows(url: str) -> list[tuple]:
    return rows(url, "SELECT state, departed_at, completed_at FROM trips")


def completed(url: str) -> bool:
    return rows(url, "SELECT state FROM trips") == [("completed",)]


def test_a_trip_is_completed_when_its_truck_is_back_after_every_stop(mqtt_broker, trip) -> None:
    url, gateway, start = trip
    fixes = drive(start, TRIP + HOME)
    ingest = consumer(mqtt_broker, url, f"g{uuid.uuid4().hex[:8]}")
    try:
        send(mqtt_broker, gateway, positions(fixes), size=10)
        wait_until(lambda: completed(url), timeout=30, what="the trip to complete")
        wait_until(lambda: ingest.health()["pending_messages"] == 0, what="every message acked")
    finally:
        ingest.stop()
    left = first_time(fixes, WAREHOUSE, inside=False, after=start)
    at_2 = first_time(fixes, STOP_2, inside=True, after=left)
    home = first_time(fixes, WAREHOUSE, inside=True, after=at_2)
    assert trip_rows(url) == [("completed", left, home)]
    assert ingest.stats.tracking["trips_completed"] == 1
    kinds = rows(
        url,
        "SELECT g.name, t.kind, t.initial, t.at FROM fence_transitions t"
        " JOIN geofences g ON g.id = t.fence_id WHERE g.name = 'wh1' ORDER BY t.at",
    )
    assert [k[:3] for k in kinds] == [("wh1", "entered", True), ("wh1", "exited", False),
                                      ("wh1", "entered", False)]  # fmt: skip
    assert kinds[-1][3] == home
    # The orders stay where the stops left them: a trip's end moves none of them.
    for number in ("SO-1", "SO-2"):
        assert [t for _, t, *_ in moves(url, number)][-1] == "arrived"
    # A completed trip is no longer on the road: its parked tracker raises no alarm.
    with psycopg.connect(url) as conn:
        assert open_stale_trackers(conn, fixes[-1].time + timedelta(hours=1), 10) == 0


def test_back_in_the_yard_with_a_stop_still_open_the_trip_goes_on(mqtt_broker, trip) -> None:
    """Home after stop 1 only: not completed. Out again to stop 2 and home: completed then,
    at the second return."""
    url, gateway, start = trip
    start -= timedelta(minutes=15)  # two round trips: the last fixes must not be in the future
    first = drive(start, TRIP[:3] + HOME)
    rest = drive(first[-1].time + timedelta(seconds=10),
                 [("dwell", WAREHOUSE, 10), ("drive", STOP_2, 15.0), ("dwell", STOP_2, 60),
                  *HOME])  # fmt: skip
    ingest = consumer(mqtt_broker, url, f"g{uuid.uuid4().hex[:8]}")
    try:
        send(mqtt_broker, gateway, positions(first), size=10)
        wait_until(lambda: ingest.stats.snapshot()["events_stored"] == len(first),
                   what="the first return stored")  # fmt: skip
        left = first_time(first, WAREHOUSE, inside=False, after=start)
        assert trip_rows(url) == [("departed", left, None)]
        entries = "SELECT count(*) FROM fence_transitions t JOIN geofences g ON g.id = t.fence_id"
        entries += " WHERE g.name = 'wh1' AND t.kind = 'entered' AND NOT t.initial"
        assert rows(url, entries) == [(1,)], "the truck was seen home once already"
        send(mqtt_broker, gateway, positions(rest), size=10)
        wait_until(lambda: completed(url), timeout=30, what="the trip to complete")
    finally:
        ingest.stop()
    at_2 = first_time(rest, STOP_2, inside=True, after=rest[0].time)
    home = first_time(rest, WAREHOUSE, inside=True, after=at_2)
    assert trip_rows(url) == [("completed", left, home)]
    assert rows(url, "SELECT seq, state FROM trip_stops ORDER BY seq") == [
        (1, "arrived"), (2, "arrived")
    ]  # fmt: skip


def test_a_trip_departed_by_the_api_in_the_yard_completes_on_the_real_return(
    mqtt_broker, trip
) -> None:
    """Departed by a dispatcher while the truck still stands in the yard (its first fix there
    is an entry, but from before the departure): completed only when it comes back."""
    url, gateway, start = trip
    departed = start + timedelta(seconds=60)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE trips SET state = 'departed', departed_at = %s", (departed,))
    fixes = drive(start, TRIP + HOME)
    ingest = consumer(mqtt_broker, url, f"g{uuid.uuid4().hex[:8]}")
    try:
        send(mqtt_broker, gateway, positions(fixes), size=10)
        wait_until(lambda: completed(url), timeout=30, what="the trip to complete")
    finally:
        ingest.stop()
    at_1 = first_time(fixes, STOP_1, inside=True, after=start)
    at_2 = first_time(fixes, STOP_2, inside=True, after=at_1)
    home = first_time(fixes, WAREHOUSE, inside=True, after=at_2)
    assert trip_rows(url) == [("completed", departed, home)]
