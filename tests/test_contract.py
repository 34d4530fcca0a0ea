"""The event contract: what round-trips, and what decode refuses with which reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from event_contract import (
    SCHEMA_VERSION,
    Batch,
    CodeKind,
    DeviceState,
    DeviceStatus,
    PositionEvent,
    ReadPoint,
    ScanEvent,
    decode,
    encode,
    new_event_id,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# Any text PostgreSQL can hold: no NUL, no lone surrogates (not encodable as UTF-8).
text_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2026, 11, 22, 11), timezones=st.just(UTC)
)


@st.composite
def positions(draw: st.DrawFn) -> PositionEvent:
    return PositionEvent(
        event_id=new_event_id(),
        device=draw(names),
        seq=draw(st.integers(0, 2**63 - 1)),
        device_time=draw(times),
        received_at=draw(times),
        lat=draw(st.floats(-90, 90)),
        lon=draw(st.floats(-180, 180)),
        speed_mps=draw(st.none() | st.floats(0, 400)),
        heading_deg=draw(st.none() | st.floats(0, 359.999)),
        hdop=draw(st.none() | st.floats(0, 100)),
        satellites=draw(st.none() | st.integers(0, 255)),
    )


@st.composite
def scans(draw: st.DrawFn, site: str = "wh1") -> ScanEvent:
    return ScanEvent(
        event_id=new_event_id(),
        device=draw(names),
        seq=draw(st.integers(0, 2**63 - 1)),
        device_time=draw(times),
        received_at=draw(times),
        code=draw(st.text(text_chars, min_size=1, max_size=256)),
        code_kind=draw(st.sampled_from(CodeKind)),
        read_count=draw(st.integers(1, 2**31 - 1)),
        read_point=ReadPoint(site=site, door=draw(names)),
    )


def batch_of(events: list, gateway: str = "gw1") -> bytes:
    return encode(
        Batch(
            schema_version=SCHEMA_VERSION, site="wh1", gateway=gateway, sent_at=NOW, events=events
        )
    )


@given(st.lists(positions(), min_size=1, max_size=20))
def test_any_valid_position_batch_round_trips(events: list[PositionEvent]) -> None:
    decoded = decode("tracklane/v1/wh1/gw1/positions", batch_of(events), now=NOW)
    assert decoded.rejects == []
    assert decoded.events == events


@given(st.lists(scans(), min_size=1, max_size=20))
def test_any_valid_scan_batch_round_trips(events: list[ScanEvent]) -> None:
    decoded = decode("tracklane/v1/wh1/gw1/scans", batch_of(events), now=NOW)
    assert decoded.rejects == []
    assert decoded.events == events


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_and_are_rejected_whole(payload: bytes) -> None:
    decoded = decode("tracklane/v1/wh1/gw1/scans", payload, now=NOW)
    assert decoded.events == []
    assert len(decoded.rejects) == 1 and decoded.rejects[0].raw == payload


def _doc(event: PositionEvent) -> dict:
    return json.loads(batch_of([event]))


def _one_position() -> PositionEvent:
    return PositionEvent(
        event_id=new_event_id(), device="gps1", seq=1, device_time=NOW, received_at=NOW,
        lat=1.0, lon=2.0,
    )  # fmt: skip


def test_missing_schema_version_is_refused_with_the_reason() -> None:
    doc = _doc(_one_position())
    del doc["schema_version"]
    decoded = decode("tracklane/v1/wh1/gw1/positions", json.dumps(doc).encode(), now=NOW)
    assert decoded.events == []
    assert decoded.rejects[0].reason.startswith("unknown schema_version None")


def test_values_the_database_cannot_hold_are_refused_at_the_contract() -> None:
    doc = _doc(_one_position())
    doc["events"][0]["seq"] = 2**63
    decoded = decode("tracklane/v1/wh1/gw1/positions", json.dumps(doc).encode(), now=NOW)
    assert decoded.events == [] and "seq" in decoded.rejects[0].reason

    status = DeviceStatus(
        event_id=new_event_id(), device="r1", seq=1, device_time=NOW, received_at=NOW,
        state=DeviceState.ONLINE, counters={"reads": 1.0},
    )  # fmt: skip
    raw = batch_of([status]).replace(b'"reads":1.0', b'"reads":NaN')
    decoded = decode("tracklane/v1/wh1/gw1/status", raw, now=NOW)
    assert decoded.events == [] and "counters" in decoded.rejects[0].reason


def test_future_events_are_refused_and_old_ones_kept() -> None:
    future = _one_position().model_copy(update={"device_time": NOW + timedelta(minutes=6)})
    old = _one_position().model_copy(update={"device_time": NOW - timedelta(days=3)})
    decoded = decode("tracklane/v1/wh1/gw1/positions", batch_of([future, old]), now=NOW)
    assert decoded.events == [old]
    assert "ahead of ingest's clock" in decoded.rejects[0].reason
    assert decoded.rejects[0].event_index == 0


def test_a_scan_for_another_site_is_refused() -> None:
    scan = ScanEvent(
        event_id=new_event_id(), device="s1", seq=1, device_time=NOW, received_at=NOW,
        code="x", code_kind=CodeKind.BARCODE, read_point=ReadPoint(site="wh2", door="d1"),
    )  # fmt: skip
    decoded = decode("tracklane/v1/wh1/gw1/scans", batch_of([scan]), now=NOW)
    assert decoded.events == []
    assert "read point site 'wh2'" in decoded.rejects[0].reason


def test_topics_outside_the_layout_are_refused() -> None:
    payload = batch_of([_one_position()])
    for topic in ("tracklane/v2/wh1/gw1/positions", "tracklane/v1/wh1/gw1/feedback", "x"):
        decoded = decode(topic, payload, now=NOW)
        assert decoded.events == [] and decoded.rejects[0].raw == payload
