"""The pure analytics rules: percentiles, stage durations, on-time, haversine, dwell."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import (
    OnTime,
    OnTimeTally,
    OrderEvent,
    classify,
    distribution,
    dwell_end,
    haversine_m,
    path_length_m,
    percentile,
    stage_durations,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def after(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_percentiles_interpolate_between_ranks_by_hand() -> None:
    assert percentile([10, 20, 30, 90], 50) == 25  # halfway between the 2nd and 3rd
    assert percentile([90, 10, 30, 20], 90) == pytest.approx(72)  # rank 2.7: 30 + 0.7 * 60
    assert percentile([7], 90) == 7
    assert distribution([1, 2, 3, 4]) == distribution([4, 3, 2, 1])
    d = distribution([20, 30, 30])
    assert (d.count, d.p50, d.p90, d.rounded().mean) == (3, 30, 30, 26.67)
    assert distribution([]).p50 is None and distribution([]).count == 0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1], 101)


values = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50)


@given(values, st.floats(0, 100))
def test_a_percentile_lies_within_the_data_and_agrees_with_the_statistics_module(
    data: list[float], q: float
) -> None:
    p = percentile(data, q)
    assert min(data) <= p <= max(data)
    if len(data) > 1:  # statistics' "inclusive" method is the same interpolation
        cuts = statistics.quantiles(data, n=10, method="inclusive")
        assert percentile(data, 90) == pytest.approx(cuts[8], rel=1e-9, abs=1e-6)
        assert percentile(data, 50) == pytest.approx(statistics.median(data), abs=1e-6)


@given(values)
def test_p50_never_exceeds_p90_and_the_mean_is_the_mean(data: list[float]) -> None:
    d = distribution(data)
    assert d.p50 is not None and d.p90 is not None and d.p50 <= d.p90 + 1e-9
    assert d.mean == pytest.approx(statistics.fmean(data))


def stages(*moves: tuple[float, str]) -> dict[str, float]:
    return {d.stage: d.minutes for d in stage_durations(OrderEvent(after(m), s) for m, s in moves)}


def test_stage_durations_by_hand() -> None:
    assert stages((0, "created"), (10, "picking"), (20, "picked"), (40, "packed"), (60, "loaded"),
                  (90, "in_transit"), (120, "arriving"), (130, "arrived"), (180, "delivered")) == {
        "created": 10, "picking": 30, "packed": 20, "loaded": 30, "in_transit": 90, "total": 180,
    }  # fmt: skip
    # A skipped stage is not measured; the one before lasts until the jump.
    assert stages((0, "created"), (30, "packed")) == {"created": 30}
    # Unsorted input, a repeat and a non-stage state change nothing.
    assert stages((30, "packed"), (0, "created"), (35, "packed"), (10, "picking")) == {
        "created": 10, "picking": 20
    }  # fmt: skip
    # A cancellation ends the history: the stage it interrupted is not measured.
    assert stages((0, "created"), (5, "picking"), (9, "cancelled"), (20, "packed")) == {
        "created": 5
    }
    assert stages((0, "created")) == {}
    assert "total" not in stages((5, "picking"), (9, "delivered"))  # no creation seen


states = st.sampled_from(
    ["created", "picking", "picked", "packed", "loaded", "in_transit", "arriving", "arrived",
     "delivered", "cancelled"]
)  # fmt: skip


@given(st.lists(st.tuples(st.integers(0, 10_000), states), max_size=15))
def test_stages_are_ordered_non_negative_and_sum_to_the_total(moves: list[tuple[int, str]]) -> None:
    found = stage_durations(OrderEvent(after(m), s) for m, s in moves)
    assert all(d.minutes >= 0 for d in found)
    parts = [d for d in found if d.stage != "total"]
    assert all(a.ended_at == b.started_at for a, b in pairwise(parts))
    assert len({d.stage for d in found}) == len(found)
    total = [d for d in found if d.stage == "total"]
    if total:  # the stages tile created -> delivered without gaps
        assert math.isclose(sum(d.minutes for d in parts), total[0].minutes)


def test_on_time_is_at_or_before_the_window_end() -> None:
    assert classify(after(60), after(60)) is OnTime.ON_TIME
    assert classify(after(61), after(60)) is OnTime.LATE
    assert classify(after(0), None) is OnTime.NO_WINDOW
    tally = OnTimeTally()
    for outcome in (OnTime.ON_TIME, OnTime.LATE, OnTime.LATE, OnTime.NO_WINDOW):
        tally.add(outcome)
    assert (tally.delivered, tally.rate) == (4, 1 / 3)
    assert OnTimeTally(no_window=2).rate is None


def test_haversine_by_hand() -> None:
    # On a meridian or the equator the haversine is R * angle: 1 degree = 111,195.08 m.
    assert haversine_m(0, 0, 0, 1) == pytest.approx(6_371_008.8 * math.pi / 180)
    assert haversine_m(52.0, 13.0, 52.01, 13.0) == pytest.approx(1111.9508, abs=1e-3)
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * 6_371_008.8)
    assert path_length_m([(52.0, 13.0), (52.01, 13.0), (52.03, 13.0)]) == pytest.approx(3335.8524)
    assert path_length_m([(1.0, 2.0)]) == 0


coords = st.tuples(st.floats(-85, 85), st.floats(-180, 180))


@given(coords, coords, coords)
def test_haversine_is_a_metric(a, b, c) -> None:  # type: ignore[no-untyped-def]
    assert haversine_m(*a, *b) == pytest.approx(haversine_m(*b, *a), abs=1e-6)
    assert haversine_m(*a, *a) == pytest.approx(0, abs=1e-6)
    assert haversine_m(*a, *c) <= haversine_m(*a, *b) + haversine_m(*b, *c) + 1e-6


def test_dwell_ends_at_the_exit_else_the_delivery() -> None:
    end = dwell_end(after(0), after(15), after(20))
    assert end is not None and (end.at, end.source) == (after(15), "exit")
    end = dwell_end(after(0), None, after(20))
    assert end is not None and (end.at, end.source) == (after(20), "delivery")
    assert dwell_end(after(30), after(15), None) is None  # an exit before arriving is another visit
    assert dwell_end(after(0), None, None) is None
