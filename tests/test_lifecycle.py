"""The order lifecycle table: any order of evidence yields a legal state, never a backward move."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orders.exceptions import ExceptionStatus, exception_move
from orders.lifecycle import (
    ORDER_RANK,
    ORDER_TABLE,
    PACKAGE_RANK,
    Ignored,
    Moved,
    OrderState,
    PackageState,
    Trigger,
    after_packages,
    order_move,
    package_move,
    rollup,
)

O = OrderState  # noqa: E741 (short names keep the tables readable)
P = PackageState

evidence = st.sampled_from(sorted(ORDER_TABLE)) | st.tuples(
    st.sampled_from(Trigger), st.sampled_from(OrderState)
)


def _rank(state: OrderState) -> int:
    return -1 if state is O.CANCELLED else ORDER_RANK[state]


@given(st.lists(evidence, max_size=40))
def test_any_sequence_of_evidence_moves_only_by_the_table_and_never_backwards(steps):
    state = O.CREATED
    for trigger, target in steps:
        outcome = order_move(state, trigger, target)
        if isinstance(outcome, Moved):
            assert outcome.before == state and outcome.after == target
            assert state in ORDER_TABLE[(trigger, target)], "moved by a row the table lacks"
            if target is not O.CANCELLED:
                assert ORDER_RANK[target] > ORDER_RANK[state], "moved backwards"
            state = target
        else:
            assert outcome.state == state and outcome.reason
    # Once cancelled or delivered, nothing moves it again.
    for trigger, target in ORDER_TABLE:
        if state in (O.CANCELLED, O.DELIVERED):
            assert not order_move(state, trigger, target).moved


@given(st.lists(st.sampled_from(PackageState), max_size=30))
def test_packages_only_move_forward_whatever_order_the_scans_arrive_in(targets):
    state = P.CREATED
    for target in targets:
        outcome = package_move(state, target)
        if outcome.moved:
            assert PACKAGE_RANK[target] > PACKAGE_RANK[state]
            state = target
    assert state == max([P.CREATED, *targets], key=PACKAGE_RANK.__getitem__)


@given(st.lists(st.lists(st.sampled_from(PackageState), min_size=1, max_size=5), max_size=20))
def test_the_order_follows_its_packages_forward_and_never_past_the_slowest(histories):
    """Packages of one order scanned in any interleaving: the order ends at the roll-up of
    their final states and was never ahead of what its packages showed at the time."""
    packages = [P.CREATED] * max(1, len(histories))
    order = O.CREATED
    for i, history in enumerate(histories):
        for target in history:
            if package_move(packages[i], target).moved:
                packages[i] = target
            outcome = after_packages(order, packages)
            if outcome.moved:
                assert ORDER_RANK[outcome.after] > ORDER_RANK[order]
                order = OrderState(outcome.after)
            assert ORDER_RANK[order] <= max(ORDER_RANK[rollup(packages)], ORDER_RANK[O.PICKING])
    assert order == max(O.CREATED, rollup(packages), key=ORDER_RANK.__getitem__)


def test_rollup_is_decided_by_the_slowest_package():
    assert rollup([]) == O.CREATED
    assert rollup([P.CREATED, P.CREATED]) == O.CREATED
    assert rollup([P.CREATED, P.PACKED]) == O.PICKING
    assert rollup([P.PICKED, P.LOADED]) == O.PICKED
    assert rollup([P.PACKED, P.PACKED]) == O.PACKED  # "packed when all its packages are"
    assert rollup([P.LOADED, P.LOADED]) == O.LOADED


def test_a_late_pack_scan_after_loading_is_ignored_with_a_reason():
    outcome = order_move(O.LOADED, Trigger.PACKAGES, O.PACKED)
    assert isinstance(outcome, Ignored)
    assert "late or out-of-order" in outcome.reason


def test_evidence_may_skip_steps_forward():
    assert order_move(O.CREATED, Trigger.PACKAGES, O.LOADED) == Moved(O.CREATED, O.LOADED)
    assert order_move(O.IN_TRANSIT, Trigger.ARRIVED, O.ARRIVED).moved
    assert order_move(O.IN_TRANSIT, Trigger.DELIVERED, O.DELIVERED).moved


def test_cancelling_is_refused_once_the_goods_have_left():
    assert order_move(O.LOADED, Trigger.CANCELLED, O.CANCELLED).moved
    refused = order_move(O.IN_TRANSIT, Trigger.CANCELLED, O.CANCELLED)
    assert isinstance(refused, Ignored) and "goods have left" in refused.reason


def test_a_trigger_cannot_propose_a_target_outside_its_rows():
    outcome = order_move(O.LOADED, Trigger.DEPARTED, O.DELIVERED)
    assert isinstance(outcome, Ignored) and "never moves" in outcome.reason


def test_exceptions_go_open_acknowledged_resolved_and_stay_resolved():
    S = ExceptionStatus
    assert exception_move(S.OPEN, S.ACKNOWLEDGED) is None
    assert exception_move(S.ACKNOWLEDGED, S.RESOLVED) is None
    assert exception_move(S.OPEN, S.RESOLVED) is None
    assert exception_move(S.ACKNOWLEDGED, S.OPEN) is not None
    assert "resolved" in (exception_move(S.RESOLVED, S.OPEN) or "")
