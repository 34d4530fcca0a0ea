"""ETA: remaining distance along a route or as the crow flies, smoothed speed, band, predicates."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geofence.eta import (
    EARTH_RADIUS_M,
    EtaParams,
    Route,
    SpeedState,
    haversine_m,
    is_delayed,
    is_stale,
    remaining_m,
    update,
)

P = EtaParams()
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180  # along a meridian


def north_of(origin, metres):
    return (origin[0] + metres / M_PER_DEG, origin[1])


def test_haversine_on_the_mean_radius():
    assert haversine_m((52.0, 13.0), (53.0, 13.0)) == pytest.approx(111_195.08, abs=0.01)
    assert haversine_m((0.0, 0.0), (0.0, 180.0)) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_without_a_route_the_great_circle_is_stretched_by_the_road_factor():
    left, along = remaining_m((52.0, 13.0), (52.1, 13.0), None, P)
    assert not along and left == pytest.approx(1.3 * 0.1 * M_PER_DEG)


def test_along_a_route_the_distance_follows_the_polyline():
    start = (52.0, 13.0)
    corner = north_of(start, 1000)
    end = (corner[0], corner[1] + 1000 / (M_PER_DEG * math.cos(math.radians(corner[0]))))
    route = Route.of([start, corner, end])
    left, along = remaining_m(north_of(start, 200), end, route, P)
    assert along and left == pytest.approx(1800, abs=0.5)
    off = (north_of(start, 500)[0], 13.0 + 100 / (M_PER_DEG * math.cos(math.radians(52))))
    assert remaining_m(off, end, route, P)[0] == pytest.approx(1500 + 100, abs=0.5)
    assert remaining_m(end, start, route, P)[0] == 0  # past the stop
    far = (52.0, 13.1)  # kilometres off the route: as the crow flies, times the road factor
    assert remaining_m(far, end, route, P)[1] is False


@given(
    st.floats(3, 40),
    st.floats(5_000, 50_000),
    st.integers(2, 8),
    st.floats(0, 0.99),
)
def test_on_a_straight_route_at_constant_speed_the_eta_is_exact(speed, length, legs, share):
    start = (48.0, 2.0)
    route = Route.of([north_of(start, length * i / legs) for i in range(legs + 1)])
    stop = route.points[-1]
    state, t0 = SpeedState(), 1_700_000_000.0
    for i in range(5):
        t = t0 + 10 * i
        pos = north_of(start, speed * (t - t0) + share * length * 0.5)
        state, eta = update(
            state, time_s=t, position=pos, speed_mps=speed, stop=stop, route=route, params=P
        )
    truth = t0 + (length - share * length * 0.5) / speed
    assert eta is not None and eta.along_route
    assert eta.arrival_s == pytest.approx(truth, abs=1e-3)
    assert eta.earliest_s <= eta.arrival_s <= eta.latest_s


@given(st.floats(3, 30), st.lists(st.floats(-0.1, 0.1), min_size=1, max_size=60))
def test_the_band_holds_the_true_arrival_under_speed_noise_within_ten_percent(speed, noise):
    stop = north_of((10.0, 20.0), 60_000)
    state, eta = SpeedState(), None
    for i, e in enumerate(noise):
        t = 15.0 * i
        state, eta = update(
            state,
            time_s=t,
            position=north_of((10.0, 20.0), speed * t),
            speed_mps=speed * (1 + e),
            stop=stop,
            route=Route.of([(10.0, 20.0), stop]),
            params=P,
        )
    assert eta is not None
    truth = 60_000 / speed
    assert eta.earliest_s - 1e-6 <= truth <= eta.latest_s + 1e-6


def test_a_stopped_truck_gets_a_finite_eta_at_the_floor_speed_and_a_wide_band():
    stop = north_of((50.0, 8.0), 6000)
    state = SpeedState()
    for t in range(0, 600, 30):
        state, eta = update(
            state, time_s=t, position=(50.0, 8.0), speed_mps=0.0, stop=stop, params=P
        )
    assert eta is not None and eta.speed_mps == P.floor_mps
    left = 6000 * P.road_factor
    assert eta.arrival_s == pytest.approx(570 + left / 2.0)
    assert eta.latest_s == pytest.approx(570 + left / 1.0)


def test_the_speed_is_smoothed_and_derived_from_displacement_when_missing():
    origin, stop = (50.0, 8.0), north_of((50.0, 8.0), 10_000)
    state, _ = update(
        state=SpeedState(), time_s=0, position=origin, speed_mps=None, stop=stop, params=P
    )
    assert state.mean_mps is None
    state, _ = update(
        state, time_s=10, position=north_of(origin, 100), speed_mps=None, stop=stop, params=P
    )
    assert state.mean_mps == pytest.approx(10.0)
    state, _ = update(
        state, time_s=130, position=north_of(origin, 200), speed_mps=20.0, stop=stop, params=P
    )
    assert state.mean_mps == pytest.approx(10 + (1 - math.exp(-1)) * 10)  # 120 s = one tau


def test_a_late_fix_updates_nothing():
    stop = north_of((50.0, 8.0), 10_000)
    state, _ = update(
        SpeedState(), time_s=100, position=(50.0, 8.0), speed_mps=10, stop=stop, params=P
    )
    assert update(state, time_s=90, position=stop, speed_mps=1, stop=stop, params=P) == (
        state,
        None,
    )


def test_speed_state_survives_a_json_round_trip():
    state, _ = update(
        SpeedState(), time_s=1.5, position=(1.0, 2.0), speed_mps=3.25, stop=(1.1, 2.0), params=P
    )
    assert SpeedState.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert SpeedState.from_json(SpeedState().to_json()) == SpeedState()


def test_delay_and_stale_tracker_predicates():
    stop = north_of((50.0, 8.0), 36_000)
    route = Route.of([(50.0, 8.0), stop])
    _, eta = update(
        SpeedState(), time_s=0, position=(50.0, 8.0), speed_mps=10, stop=stop, route=route, params=P
    )
    assert eta is not None and eta.arrival_s == pytest.approx(3600)
    assert is_delayed(eta, window_end_s=3500)
    assert not is_delayed(eta, window_end_s=3500, grace_s=300)
    assert not is_delayed(eta, window_end_s=3700)
    assert not is_delayed(eta, window_end_s=3500, certain=True)  # earliest is 3600 / 1.15
    assert is_delayed(eta, window_end_s=3000, certain=True)
    assert is_stale(None, now_s=0, silent_s=600)
    assert not is_stale(1000, now_s=1599, silent_s=600)
    assert is_stale(1000, now_s=1600, silent_s=600)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="band_floor_mps"):
        EtaParams(floor_mps=1.0, band_floor_mps=2.0)
    with pytest.raises(ValueError, match="at least 2 points"):
        Route.of([(0.0, 0.0)])
