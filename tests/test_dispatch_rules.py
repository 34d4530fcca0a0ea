"""Loading rules at a dispatch door: right truck, wrong truck, cancelled, already loaded."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from event_contract import VerdictKind
from orders.dispatch import DoorAssignment, PackageOnDock, judge_load, short_load
from orders.exceptions import ExceptionKind
from orders.lifecycle import OrderState, PackageState

PKG = PackageOnDock(
    sscc="006141410000000017",
    order_number="SO-1001",
    order_state=OrderState.PACKED,
    planned_trip="T1",
    loaded_trip=None,
    state=PackageState.PACKED,
)
DOOR = DoorAssignment(door="door-1", trip="T1", vehicle="truck-1")


def test_a_package_planned_on_the_doors_trip_is_loaded():
    decision = judge_load(PKG, DOOR)
    assert decision.verdict is VerdictKind.ACCEPTED and decision.load and decision.ok
    assert decision.exception is None


def test_a_package_for_another_trip_is_a_wrong_load():
    decision = judge_load(replace(PKG, planned_trip="T2"), DOOR)
    assert decision.verdict is VerdictKind.WRONG_TRUCK
    assert decision.exception is ExceptionKind.WRONG_LOAD and not decision.load
    assert "T2" in decision.message and "T1" in decision.message


def test_a_package_of_a_cancelled_order_is_a_wrong_load():
    decision = judge_load(replace(PKG, order_state=OrderState.CANCELLED), DOOR)
    assert decision.verdict is VerdictKind.ORDER_CANCELLED
    assert decision.exception is ExceptionKind.WRONG_LOAD


def test_a_package_loaded_elsewhere_is_a_wrong_load():
    decision = judge_load(replace(PKG, loaded_trip="T7", state=PackageState.LOADED), DOOR)
    assert decision.verdict is VerdictKind.ALREADY_DISPATCHED
    assert decision.exception is ExceptionKind.WRONG_LOAD and "T7" in decision.message


def test_the_same_package_read_again_at_its_door_is_a_harmless_duplicate():
    decision = judge_load(replace(PKG, loaded_trip="T1", state=PackageState.LOADED), DOOR)
    assert decision.verdict is VerdictKind.DUPLICATE and decision.ok
    assert decision.exception is None and not decision.load


def test_a_door_without_a_trip_loads_nothing_and_says_what_to_do():
    decision = judge_load(PKG, replace(DOOR, trip=None))
    assert decision.verdict is VerdictKind.WRONG_DOOR and not decision.load
    assert "assign" in decision.message


packages = st.builds(
    PackageOnDock,
    sscc=st.just("006141410000000017"),
    order_number=st.just("SO-1"),
    order_state=st.sampled_from(OrderState),
    planned_trip=st.sampled_from([None, "T1", "T2"]),
    loaded_trip=st.sampled_from([None, "T1", "T2"]),
    state=st.sampled_from(PackageState),
)


@given(packages, st.sampled_from([None, "T1", "T2"]))
def test_only_a_package_planned_on_the_trip_and_not_loaded_elsewhere_is_loaded(package, trip):
    decision = judge_load(package, replace(DOOR, trip=trip))
    rightful = (
        trip is not None
        and package.planned_trip == trip
        and package.loaded_trip is None
        and package.order_state is not OrderState.CANCELLED
        and package.state is not PackageState.DELIVERED
    )
    assert decision.load == rightful
    # Every refusal that is not a harmless repeat or a door problem opens a wrong load.
    if not decision.ok and decision.verdict is not VerdictKind.WRONG_DOOR:
        assert decision.exception is ExceptionKind.WRONG_LOAD


def test_a_trip_departing_without_a_planned_package_is_short():
    loaded = replace(PKG, loaded_trip="T1", state=PackageState.LOADED)
    missing = replace(PKG, sscc="006141410000000024")
    cancelled = replace(PKG, sscc="006141410000000031", order_state=OrderState.CANCELLED)
    other = replace(PKG, sscc="006141410000000048", planned_trip="T2")
    assert short_load([loaded, missing, cancelled, other], "T1") == [missing]


def test_only_accepted_and_harmless_repeats_are_go_aheads_at_the_dock():
    from event_contract import Verdict

    ok = {k for k in VerdictKind if Verdict(device="scanner-1", verdict=k).ok}
    assert ok == {VerdictKind.ACCEPTED, VerdictKind.DUPLICATE}
