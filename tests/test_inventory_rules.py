"""Oversell checks and replenishment hints."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orders.inventory import replenishment_hint, shortfalls


def test_shortfalls_name_each_line_stock_cannot_serve():
    short = shortfalls({"A": 5, "B": 2, "C": 1}, {"A": 3, "B": 2})
    assert [(s.sku, s.missing) for s in short] == [("A", 2), ("C", 1)]
    assert str(short[0]) == "A: 5 wanted, 3 available"


def test_no_hint_above_the_threshold():
    assert replenishment_hint("A", 11, 10, 70, 7, 2) is None


def test_the_hint_covers_the_lead_time_at_average_usage():
    hint = replenishment_hint("A", 4, 10, used_last_days=70, days=7, lead_time_days=3)
    assert hint is not None
    assert hint.daily_usage == 10
    assert hint.reorder_qty == 30 + 10 - 4
    assert "reorder 36" in str(hint)


@given(
    st.integers(-50, 100),
    st.integers(0, 100),
    st.integers(0, 10_000),
    st.floats(0.5, 90),
    st.floats(0, 60),
)
def test_following_the_hint_lifts_stock_above_what_the_lead_time_uses(
    on_hand, threshold, used, days, lead
):
    hint = replenishment_hint("A", on_hand, threshold, used, days, lead)
    if on_hand > threshold:
        assert hint is None
        return
    assert hint is not None and hint.reorder_qty >= 1
    assert on_hand + hint.reorder_qty - hint.daily_usage * lead >= threshold - 1e-9
