"""The per-(vehicle, fence) state machine: hysteresis in distance and time, HDOP, late fixes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.state import (
    FenceFix,
    FenceParams,
    FenceState,
    Kind,
    Transition,
    Verdict,
    Zone,
    step,
)

P = FenceParams(inner_margin_m=15, outer_margin_m=30, min_dwell_s=60, history_s=600)
IN, OUT, EDGE = -100.0, 100.0, 0.0  # well inside, well outside, on the edge (hdop 1)


def fix(t: float, d: float, hdop: float | None = 1.0) -> FenceFix:
    return FenceFix(time_s=t, distance_m=d, hdop=hdop)


def feed(fixes, params=P, state=None):
    state = state or FenceState()
    out: list[Transition] = []
    verdicts: list[Verdict] = []
    for f in fixes:
        stepped = step(state, f, params)
        state = stepped.state
        out.extend(stepped.transitions)
        verdicts.append(stepped.verdict)
    return state, out, verdicts


def reference(fixes, params=P) -> list[Transition]:
    """The rule as the docstring states it, on fixes sorted by time: the oracle."""
    side, since, out = None, None, []
    for f in sorted(fixes, key=lambda f: f.time_s):
        zone = params.zone(f)
        if zone is Zone.BAND:
            continue
        if side is None:
            side = zone
            if zone is Zone.IN:
                out.append(Transition(Kind.ENTERED, f.time_s, f.time_s, initial=True))
        elif zone is side:
            since = None
        else:
            since = f.time_s if since is None else since
            if f.time_s - since >= params.min_dwell_s:
                kind = Kind.ENTERED if zone is Zone.IN else Kind.EXITED
                out.append(Transition(kind, since, f.time_s))
                side, since = zone, None
    return out


def test_a_first_fix_inside_is_an_entry_at_once_flagged_initial():
    state, out, _ = feed([fix(1000, IN)])
    assert out == [Transition(Kind.ENTERED, 1000, 1000, initial=True)]
    assert state.side is Zone.IN


def test_a_first_fix_outside_settles_silently_and_edge_fixes_wait():
    assert feed([fix(0, OUT)])[1] == []
    state, out, _ = feed([fix(0, EDGE), fix(10, EDGE)])
    assert out == [] and state.side is None
    assert feed([fix(0, EDGE), fix(10, IN)])[1] == [Transition(Kind.ENTERED, 10, 10, True)]


def test_entry_is_confirmed_after_the_dwell_and_dated_when_the_dwell_began():
    _, out, _ = feed([fix(0, OUT), fix(30, IN), fix(60, IN)])
    assert out == []
    _, out, _ = feed([fix(0, OUT), fix(30, IN), fix(60, IN), fix(90, IN)])
    assert out == [Transition(Kind.ENTERED, at_s=30, confirmed_at_s=90)]


def test_a_fix_back_on_the_old_side_restarts_the_dwell_but_an_edge_fix_does_not():
    broken = [fix(0, OUT), fix(30, IN), fix(60, OUT), fix(90, IN), fix(120, IN)]
    assert feed(broken)[1] == []
    assert feed([*broken, fix(150, IN)])[1] == [Transition(Kind.ENTERED, 90, 150)]
    held = [fix(0, OUT), fix(30, IN), fix(60, EDGE), fix(90, IN)]
    assert feed(held)[1] == [Transition(Kind.ENTERED, 30, 90)]


def test_exit_needs_the_outer_margin_and_the_dwell():
    inside = [fix(0, IN)]
    near = [fix(t, 34.0) for t in range(10, 300, 10)]  # outside, within 30 m + 5 m (hdop 1)
    assert feed(inside + near)[1][1:] == []
    _, out, _ = feed([*inside, fix(100, 36.0), fix(159, 36.0), fix(160, 36.0)])
    assert out[1:] == [Transition(Kind.EXITED, 100, 160)]


def test_hdop_widens_both_margins_up_to_a_cap():
    assert P.zone(fix(0, -20, hdop=0.8)) is Zone.IN  # 15 + 4 m
    assert P.zone(fix(0, -20, hdop=2.0)) is Zone.BAND  # 15 + 10 m
    assert P.zone(fix(0, 45, hdop=2.0)) is Zone.OUT  # 30 + 10 m
    assert P.zone(fix(0, 35, hdop=2.0)) is Zone.BAND
    assert P.widening_m(15) == 50  # 75 m, capped
    assert P.zone(fix(0, -70, hdop=15)) is Zone.IN
    assert P.zone(fix(0, -10_000, hdop=25)) is Zone.BAND  # above max_hdop: unusable
    assert P.zone(fix(0, -20, hdop=None)) is Zone.BAND  # unknown: assumed_hdop 2


def test_poor_fixes_do_not_confirm_an_entry():
    _, out, _ = feed([fix(0, OUT), fix(30, -40, hdop=6), fix(90, -40, hdop=6)])
    assert out == []
    _, out, _ = feed([fix(0, OUT), fix(30, -40, hdop=1), fix(90, -40, hdop=1)])
    assert out == [Transition(Kind.ENTERED, 30, 90)]


edge_jitter = st.floats(-14.9, 29.9)  # within the margins, whatever the HDOP
hdops = st.one_of(st.none(), st.floats(0, 30))


@given(st.lists(st.tuples(edge_jitter, hdops), max_size=80), st.sampled_from([OUT, IN]))
def test_jitter_across_the_edge_within_the_margins_changes_nothing(jitter, start):
    fixes = [fix(0, start)] + [fix(10 * (i + 1), d, h) for i, (d, h) in enumerate(jitter)]
    state, out, _ = feed(fixes)
    assert out == reference([fixes[0]])  # only the initial entry, if it started inside
    assert state.side is (Zone.OUT if start == OUT else Zone.IN)


@given(
    st.lists(st.floats(-14.0, 14.0), min_size=60, max_size=60),
    st.integers(7, 20),
    st.integers(0, 2),
)
def test_a_noisy_pass_through_the_fence_is_exactly_one_entry_and_one_exit(noise, dwell, gap):
    """True distance: out at 200 m, down to -200 m for `dwell` fixes (10 s apart), back out;
    with noise under both margins, there is one entry and one exit, whatever the noise."""
    path = [200 - 100 * i for i in range(5)] + [-200] * dwell + [-200 + 100 * i for i in range(5)]
    path += [200] * (60 - len(path))
    noisy = [d + n for d, n in zip(path, noise, strict=True)]
    fixes = [fix(10 * i * (1 + gap), d) for i, d in enumerate(noisy)]
    out = feed(fixes)[1]
    assert [t.kind for t in out] == [Kind.ENTERED, Kind.EXITED]


def test_a_late_fix_inside_a_confirmed_period_changes_nothing():
    state, _, _ = feed([fix(0, OUT), fix(30, IN), fix(90, IN), fix(150, IN)])
    stepped = step(state, fix(120, IN), P)
    assert stepped.verdict is Verdict.APPLIED and stepped.transitions == ()
    assert stepped.state.side is Zone.IN


def test_a_late_fix_back_on_the_old_side_breaks_a_pending_dwell():
    state, _, _ = feed([fix(0, OUT), fix(30, IN), fix(80, IN)])
    stepped = step(state, fix(50, OUT), P)
    assert stepped.verdict is Verdict.APPLIED and stepped.state.pending_since_s == 80
    assert step(stepped.state, fix(100, IN), P).transitions == ()  # 100 - 80 < 60


def test_a_late_fix_can_complete_a_dwell_and_is_dated_from_it():
    state, _, _ = feed([fix(0, OUT), fix(60, IN), fix(100, IN), fix(200, OUT)])
    stepped = step(state, fix(30, IN), P)
    assert stepped.transitions == (Transition(Kind.ENTERED, 30, 100),)
    assert stepped.state.side is Zone.IN and stepped.state.pending_since_s == 200


def test_a_late_fix_that_would_rewrite_a_confirmed_transition_is_rejected():
    state, out, _ = feed([fix(0, OUT), fix(30, IN), fix(90, IN)])
    assert out == [Transition(Kind.ENTERED, 30, 90)]
    for late in (fix(60, OUT), fix(20, IN)):  # would retract it; would move its start
        stepped = step(state, late, P)
        assert stepped.verdict is Verdict.CONFLICTS and stepped.transitions == ()
        assert stepped.state.rejected == 1 and stepped.state.fixes == state.fixes


def test_fixes_older_than_the_window_are_too_old_and_repeats_are_duplicates():
    state, _, _ = feed([fix(0, OUT), fix(1000, OUT)])
    assert step(state, fix(399, IN), P).verdict is Verdict.TOO_OLD
    assert step(state, fix(400, IN), P).verdict is Verdict.APPLIED
    assert step(state, fix(1000, IN), P).verdict is Verdict.DUPLICATE
    assert step(state, fix(399, IN), P).state.rejected == 1


fix_sets = st.lists(
    st.tuples(st.integers(0, 900), st.sampled_from([IN, OUT, EDGE, -20.0])),
    min_size=1,
    max_size=40,
    unique_by=lambda p: p[0],
)


@settings(max_examples=300)
@given(fix_sets, st.randoms(use_true_random=False), st.integers(1, 120))
def test_any_delivery_order_confirms_what_the_accepted_fixes_confirm_in_time_order(
    points, rnd, max_fixes
):
    """Whatever the order: the transitions equal the rule run over the accepted fixes in time
    order; a fix is rejected only if it is older than the window or than a confirmed
    transition it would rewrite; so with nothing rejected, they equal in-order delivery."""
    params = FenceParams(min_dwell_s=60, history_s=300, max_fixes=max_fixes)
    fixes = [fix(t, d) for t, d in points]
    rnd.shuffle(fixes)
    state, out, accepted = FenceState(), [], []
    for f in fixes:
        stepped = step(state, f, params)
        if stepped.verdict is Verdict.CONFLICTS:
            assert out and f.time_s < max(t.confirmed_at_s for t in out)
            assert reference([*accepted, f], params)[: len(out)] != out
        elif stepped.verdict is Verdict.APPLIED:
            accepted.append(f)
        state = stepped.state
        out.extend(stepped.transitions)
    assert out == reference(accepted, params)
    if len(accepted) == len(fixes):
        assert out == reference(fixes, params)


@given(
    st.lists(st.sampled_from([IN, OUT, EDGE]), min_size=1, max_size=12),
    st.randoms(use_true_random=False),
)
def test_fixes_within_a_dwell_delivered_in_any_order_leave_the_same_state(zones, rnd):
    """After a confirmed period, fixes spanning less than the dwell, delivered in any order,
    are all applied and leave exactly the state in-order delivery leaves."""
    state, _, _ = feed([fix(0, OUT), fix(100, OUT)])
    tail = [fix(101 + 5 * i, d) for i, d in enumerate(zones)]  # spans < 60 s
    shuffled = tail[:]
    rnd.shuffle(shuffled)
    in_order, out_a, _ = feed(tail, state=state)
    any_order, out_b, verdicts = feed(shuffled, state=state)
    assert set(verdicts) == {Verdict.APPLIED}
    assert out_a == out_b == [] and any_order == in_order


@given(fix_sets)
def test_state_survives_a_json_round_trip_and_carries_on_the_same(points):
    fixes = [fix(t, d) for t, d in points]
    state, _, _ = feed(fixes[:-1])
    loaded = FenceState.from_json(json.loads(json.dumps(state.to_json())))
    assert loaded == state
    assert step(loaded, fixes[-1], P) == step(state, fixes[-1], P)


def test_bad_parameters_and_state_are_named():
    with pytest.raises(ValueError, match=r"history_s=30.*min_dwell_s=60"):
        FenceParams(min_dwell_s=60, history_s=30)
    with pytest.raises(ValueError, match="inner_margin_m"):
        FenceParams(inner_margin_m=-1)
    with pytest.raises(ValueError, match="fence state is malformed"):
        FenceState.from_json({"v": 1, "side": "sideways"})
