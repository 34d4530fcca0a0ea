"""RFID smoothing: one scan per (EPC, dwell), RSSI floor, min reads, cross-read suppression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sources.rfid_smoothing import RfidSmoother, SmoothingConfig, TagRead

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=2)
EPCS = ["3074257BF7194E4000001A85", "3114257BF4B4940000000003", "3034257BF400B7800004CB2F"]
DOORS = ["door-1", "door-2"]


def read(epc: str, door: str, seconds: float, rssi: float | None = -50.0, antenna: int = 1):
    return TagRead(epc, door, antenna, rssi, T0 + timedelta(seconds=seconds))


# One dwell: a start gap after the previous dwell (longer than the window) and reads inside it
# spaced by at most 1.9 s, each at a door with an RSSI.
_read_in_dwell = st.tuples(
    st.floats(0, 1.9), st.sampled_from(DOORS), st.floats(-90, -20), st.integers(1, 4)
)
_dwell = st.tuples(st.floats(2.1, 30), st.lists(_read_in_dwell, min_size=1, max_size=8))


def _build(dwells):
    """Reads of one EPC, time-ordered, and the (start, end) of each dwell in seconds."""
    reads, spans, t = [], [], 0.0
    for gap, points in dwells:
        t += gap
        start = t
        for step, door, rssi, antenna in points:
            t += step
            reads.append((t, door, rssi, antenna))
        spans.append((start, t))
    return reads, spans


@given(st.data(), st.lists(st.lists(_dwell, min_size=1, max_size=4), min_size=1, max_size=3))
def test_each_dwell_yields_exactly_one_scan_however_epcs_interleave(data, per_epc):
    smoother = RfidSmoother(SmoothingConfig(window=WINDOW))
    queues, spans = {}, {}
    for epc, dwells in zip(EPCS, per_epc, strict=False):
        built, spans[epc] = _build(dwells)
        queues[epc] = [read(epc, door, t, rssi, ant) for t, door, rssi, ant in built]
    scans = []
    # Any interleaving of the EPCs' streams, each EPC's own reads staying in order.
    while queues:
        epc = data.draw(st.sampled_from(sorted(queues)))
        scans += smoother.feed(queues[epc].pop(0))
        if not queues[epc]:
            del queues[epc]
    scans += smoother.flush()
    assert len(smoother) == 0
    for epc, epc_spans in spans.items():
        mine = [s for s in scans if s.epc == epc]
        assert len(mine) == len(epc_spans)
        for scan, (start, end) in zip(mine, epc_spans, strict=True):
            assert T0 + timedelta(seconds=start) <= scan.first_seen
            assert scan.last_seen <= T0 + timedelta(seconds=end)


@given(
    st.lists(
        st.tuples(st.sampled_from(EPCS), st.sampled_from(DOORS), st.floats(-100, -20)),
        max_size=40,
    ),
    st.sampled_from([True, False]),
)
def test_reads_under_the_rssi_floor_never_produce_a_scan(reads, poll_each):
    floor = -60.0
    smoother = RfidSmoother(SmoothingConfig(window=WINDOW, rssi_floor_dbm=floor))
    scans = []
    for i, (epc, door, rssi) in enumerate(reads):
        scans += smoother.feed(read(epc, door, i * 0.5, rssi))
        if poll_each:
            scans += smoother.poll(T0 + timedelta(seconds=i * 0.5))
    scans += smoother.flush()
    strong = [(epc, door) for epc, door, rssi in reads if rssi >= floor]
    assert {s.epc for s in scans} == {epc for epc, _ in strong}
    for scan in scans:
        assert scan.peak_rssi_dbm is not None and scan.peak_rssi_dbm >= floor
    assert sum(s.read_count for s in scans) <= len(strong)
    assert smoother.stats["reads_below_floor"] == len(reads) - len(strong)


def test_a_read_without_rssi_is_dropped_when_a_floor_is_set():
    smoother = RfidSmoother(SmoothingConfig(rssi_floor_dbm=-70))
    smoother.feed(read(EPCS[0], "door-1", 0, rssi=None))
    assert smoother.flush() == []


@given(st.lists(st.tuples(st.sampled_from(DOORS), st.floats(-90, -20)), min_size=1, max_size=30))
def test_the_stronger_and_more_read_door_wins_a_cross_read(reads):
    smoother = RfidSmoother(SmoothingConfig(window=WINDOW))
    for i, (door, rssi) in enumerate(reads):
        assert smoother.feed(read(EPCS[0], door, i * 0.1, rssi)) == []
    (scan,) = smoother.flush()

    def rank(door):
        mine = [(i, rssi) for i, (d, rssi) in enumerate(reads) if d == door]
        return (max(r for _, r in mine), len(mine), -mine[0][0]) if mine else None

    seen = {door for door, _ in reads}
    expected = max(seen, key=rank)
    assert scan.read_point == expected
    assert scan.peak_rssi_dbm == rank(expected)[0]
    assert scan.read_count == rank(expected)[1]
    assert set(scan.suppressed) == seen - {expected}


def test_equal_peaks_go_to_the_door_with_more_reads():
    smoother = RfidSmoother()
    for i, door in enumerate(["door-2", "door-1", "door-1", "door-2", "door-1"]):
        smoother.feed(read(EPCS[0], door, i * 0.1, rssi=-40))
    (scan,) = smoother.flush()
    assert (scan.read_point, scan.read_count, scan.suppressed) == ("door-1", 3, ("door-2",))


@given(st.lists(st.floats(2.01, 60), min_size=1, max_size=10), st.sampled_from(DOORS))
def test_reads_further_apart_than_the_window_are_separate_scans(gaps, door):
    smoother = RfidSmoother(SmoothingConfig(window=WINDOW))
    scans, t = [], 0.0
    for gap in gaps:
        t += gap
        scans += smoother.feed(read(EPCS[0], door, t))
    scans += smoother.flush()
    assert len(scans) == len(gaps)
    assert all(s.read_count == 1 and s.first_seen == s.last_seen for s in scans)


def test_poll_decides_a_dwell_only_once_it_has_been_quiet_for_the_window():
    smoother = RfidSmoother(SmoothingConfig(window=WINDOW))
    for i in range(50):
        smoother.feed(read(EPCS[0], "door-1", i * 0.02, rssi=-40 - i % 7, antenna=1 + i % 4))
    assert smoother.poll(T0 + timedelta(seconds=2.5)) == []
    (scan,) = smoother.poll(T0 + timedelta(seconds=3.1))
    assert (scan.read_count, scan.peak_rssi_dbm, scan.antenna) == (50, -40, 1)
    assert scan.first_seen == T0 and scan.last_seen == T0 + timedelta(seconds=0.98)
    assert smoother.poll(T0 + timedelta(seconds=10)) == [] and len(smoother) == 0


def test_a_dwell_below_min_reads_emits_nothing():
    smoother = RfidSmoother(SmoothingConfig(min_reads=3))
    smoother.feed(read(EPCS[0], "door-1", 0))
    smoother.feed(read(EPCS[0], "door-1", 0.5))
    smoother.feed(read(EPCS[1], "door-1", 0.5, rssi=-30))
    smoother.feed(TagRead(EPCS[1], "door-1", 2, -30, T0 + timedelta(seconds=1), count=2))
    (scan,) = smoother.flush()
    assert (scan.epc, scan.read_count) == (EPCS[1], 3)
    assert smoother.stats["dwells_below_min_reads"] == 1


def test_a_parked_tag_is_reported_once_after_max_dwell():
    smoother = RfidSmoother(SmoothingConfig(window=WINDOW, max_dwell=timedelta(seconds=5)))
    scans = []
    for i in range(100):  # read every 0.1 s for 10 s: one continuous dwell
        scans += smoother.feed(read(EPCS[0], "door-1", i * 0.1))
        scans += smoother.poll(T0 + timedelta(seconds=i * 0.1))
    assert len(scans) == 1 and scans[0].read_count == 51
    assert smoother.poll(T0 + timedelta(seconds=60)) == [] and len(smoother) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"window": timedelta(0)}, {"min_reads": 0}, {"max_dwell": timedelta(seconds=-1)}],
)
def test_nonsense_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        SmoothingConfig(**kwargs)
