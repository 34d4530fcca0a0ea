"""What a matched scan means: package moves, loads, verdicts, refusals."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from event_contract import Stage, VerdictKind
from orders.dispatch import DoorAssignment
from orders.exceptions import ExceptionKind
from orders.lifecycle import PACKAGE_RANK, OrderState, PackageState
from orders.scan_rules import (
    OrderView,
    PackageView,
    decide_order_label,
    decide_package,
    decide_product,
    decide_unknown,
)

ORDER = OrderView(id=1, number="SO-1", state=OrderState.PICKED, planned_trip="T1", package_count=2)
PKG = PackageView(
    id=10, sscc="006141410000000017", state=PackageState.PICKED, loaded_trip=None, order=ORDER
)
DOOR = DoorAssignment(door="door-1", trip="T1", vehicle="truck-1")


def test_a_pack_scan_packs_the_package():
    d = decide_package(PKG, Stage.PACK, None)
    assert d.verdict is VerdictKind.ACCEPTED and d.package_to is PackageState.PACKED


def test_a_dispatch_scan_at_the_right_door_loads_it_onto_the_trip():
    d = decide_package(PKG, Stage.DISPATCH, DOOR)
    assert d.package_to is PackageState.LOADED and d.load_trip == "T1"
    assert d.exception is None


def test_a_dispatch_scan_at_the_wrong_door_is_a_wrong_load_and_loads_nothing():
    d = decide_package(PKG, Stage.DISPATCH, replace(DOOR, trip="T9"))
    assert d.verdict is VerdictKind.WRONG_TRUCK and d.exception is ExceptionKind.WRONG_LOAD
    assert d.package_to is None and d.load_trip is None


def test_a_dispatch_scan_at_a_station_without_a_door_loads_nothing():
    d = decide_package(PKG, Stage.DISPATCH, None)
    assert d.verdict is VerdictKind.WRONG_DOOR and d.load_trip is None


def test_a_late_pick_scan_of_a_packed_package_moves_nothing():
    d = decide_package(replace(PKG, state=PackageState.PACKED), Stage.PICK, None)
    assert d.verdict is VerdictKind.DUPLICATE and d.package_to is None
    assert "past picked" in d.message


def test_packing_a_cancelled_orders_package_is_refused():
    cancelled = replace(PKG, order=replace(ORDER, state=OrderState.CANCELLED))
    d = decide_package(cancelled, Stage.PACK, None)
    assert d.verdict is VerdictKind.ORDER_CANCELLED and d.package_to is None


@given(
    st.sampled_from(PackageState),
    st.sampled_from([None, *Stage]),
    st.sampled_from(OrderState),
    st.sampled_from([None, "T1", "T2"]),
)
def test_a_package_scan_never_moves_a_package_backwards(state, stage, order_state, trip):
    package = replace(PKG, state=state, order=replace(ORDER, state=order_state))
    d = decide_package(package, stage, replace(DOOR, trip=trip))
    if d.package_to is not None:
        assert PACKAGE_RANK[d.package_to] > PACKAGE_RANK[state]
    if d.load_trip is not None:
        assert d.load_trip == trip == ORDER.planned_trip
        assert order_state is not OrderState.CANCELLED


def test_an_order_label_at_a_pick_station_starts_picking():
    created = replace(ORDER, state=OrderState.CREATED)
    assert decide_order_label(created, Stage.PICK, [], None).start_picking
    assert not decide_order_label(ORDER, Stage.PICK, [], None).start_picking


def test_an_order_label_stands_for_its_only_package_but_not_for_several():
    one = replace(ORDER, package_count=1)
    pkg = replace(PKG, order=one)
    assert decide_order_label(one, Stage.PACK, [pkg], None).package_to is PackageState.PACKED
    d = decide_order_label(ORDER, Stage.PACK, [PKG, replace(PKG, id=11)], None)
    assert d.verdict is VerdictKind.INVALID_CODE and "scan each package" in d.message


def test_product_and_unknown_codes_get_verdicts_that_say_what_to_do():
    assert decide_product("SKU-1", "Widget", Stage.RECEIVE).verdict is VerdictKind.ACCEPTED
    refused = decide_product("SKU-1", "Widget", Stage.DISPATCH)
    assert refused.verdict is VerdictKind.INVALID_CODE and "SSCC" in refused.message
    unknown = decide_unknown("ZZZ", "no order, package or product has this code")
    assert unknown.verdict is VerdictKind.UNKNOWN_CODE


@given(st.from_regex(r"00[0-9]{18}", fullmatch=True), st.sampled_from(["gs1-128", None, "ean-13"]))
def test_the_sscc_fast_path_agrees_with_the_full_gs1_parse(code, symbology):
    from identifiers.gs1 import Rejected, check_code
    from orders.scan_keys import scan_keys

    keys = scan_keys(code, "barcode", symbology)
    full = check_code(code, symbology)
    if isinstance(full, Rejected):
        assert keys.invalid == full.reason
    elif full.is_gs1:
        assert keys.sscc == full.ais["00"] and keys.invalid is None
