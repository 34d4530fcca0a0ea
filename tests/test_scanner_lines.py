"""Scanner lines: terminators, AIM symbology identifiers, framing, and the TCP source."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config import ReadPointConfig, ScannerTcpSourceConfig
from edge_agent.sources import Backoff, LineFramer, SourceContext
from edge_agent.sources.scanner import (
    AIM_SYMBOLOGIES,
    MAX_CODE_LENGTH,
    ScanLine,
    ScanLineError,
    ScannerTcpSource,
    parse_scan_line,
)
from event_contract import CodeKind, DeviceState, ReadPoint, Stage
from simulators.scanner import ScannerSimConfig, ScannerSimulator, gs1_check_digit, make_sscc

SSCC_LINE = "]C100106141411234567897"


@pytest.mark.parametrize("terminator", ["", "\r", "\n", "\r\n"])
def test_terminators_are_stripped(terminator: str) -> None:
    assert parse_scan_line(SSCC_LINE + terminator) == ("00106141411234567897", "gs1-128")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("]C100106141411234567897", ("00106141411234567897", "gs1-128")),
        ("]E04006381333931", ("4006381333931", "ean-13")),
        ("]d2010061414199999610ABC\x1d21XYZ", ("010061414199999610ABC\x1d21XYZ", "gs1-datamatrix")),
        ("]Q30100614141999996", ("0100614141999996", "gs1-qr")),
        ("]X9SOMETHING", ("SOMETHING", None)),  # an AIM id we do not know: stripped, no name
        ("PKG-000123", ("PKG-000123", None)),  # no AIM id at all
        ("]C1 ", (" ", "gs1-128")),  # data is kept as sent, spaces included
    ],
)
def test_aim_identifiers(line: str, expected: tuple[str, str | None]) -> None:
    assert parse_scan_line(line) == expected


@pytest.mark.parametrize("line", ["", "\r\n", "\r", "]C1", "]C1\r\n"])
def test_blank_lines_are_not_scans(line: str) -> None:
    assert parse_scan_line(line) is None


def test_overlong_and_nul_lines_are_refused() -> None:
    assert parse_scan_line("9" * MAX_CODE_LENGTH) == ("9" * MAX_CODE_LENGTH, None)
    with pytest.raises(ScanLineError, match="257 characters"):
        parse_scan_line("9" * (MAX_CODE_LENGTH + 1))
    with pytest.raises(ScanLineError, match="NUL"):
        parse_scan_line("]C1001\x00")


printable_codes = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=256
)
terminators = st.sampled_from(["", "\r", "\n", "\r\n"])


@given(code=printable_codes, aim=st.sampled_from(sorted(AIM_SYMBOLOGIES)), end=terminators)
def test_any_printable_code_round_trips_behind_an_aim_id(code: str, aim: str, end: str) -> None:
    assert parse_scan_line(f"{aim}{code}{end}") == ScanLine(code, AIM_SYMBOLOGIES[aim])


@given(code=printable_codes.filter(lambda c: not c.startswith("]")), end=terminators)
def test_any_printable_code_round_trips_without_an_aim_id(code: str, end: str) -> None:
    assert parse_scan_line(f"{code}{end}") == ScanLine(code, None)


@given(
    lines=st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1)),
    ends=st.lists(st.sampled_from([b"\r", b"\n", b"\r\n"]), min_size=1),
    cuts=st.lists(st.integers(0, 10_000)),
)
def test_framer_finds_the_same_lines_however_the_stream_is_cut(
    lines: list[str], ends: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(line.encode() + ends[i % len(ends)] for i, line in enumerate(lines))
    framer = LineFramer(max_line=100_000)
    got: list[str] = []
    start = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        got += framer.feed(stream[start:cut])
        start = cut
    assert got == lines


def test_framer_drops_an_overlong_line_and_recovers() -> None:
    framer = LineFramer(max_line=10)
    assert framer.feed(b"short\r\n" + b"x" * 8) == ["short"]
    assert framer.feed(b"x" * 8) == []  # 16 bytes without a terminator: too long
    assert framer.feed(b"xx\r\nnext\r\n") == ["next"]
    assert framer.overlong == 1


def test_gs1_check_digits() -> None:
    assert gs1_check_digit("400638133393") == 1  # EAN-13 4006381333931
    assert gs1_check_digit("10614141234567890") == 8  # GS1's SSCC example
    assert make_sscc("0614141", 123456789, extension=1) == "106141411234567897"


@given(
    prefix=st.text("0123456789", min_size=7, max_size=10),
    serial=st.integers(0, 99_999),
    at=st.integers(0, 16),
    bump=st.integers(1, 9),
)
def test_sscc_check_digit_catches_any_single_digit_error(
    prefix: str, serial: int, at: int, bump: int
) -> None:
    sscc = make_sscc(prefix, serial)
    assert len(sscc) == 18 and gs1_check_digit(sscc[:17]) == int(sscc[17])
    wrong = sscc[:at] + str((int(sscc[at]) + bump) % 10) + sscc[at + 1 : 17]
    assert gs1_check_digit(wrong) != int(sscc[17])


def test_tcp_source_turns_simulated_scans_into_scan_events() -> None:
    async def scenario() -> None:
        states: list[tuple[DeviceState, str]] = []
        seq = iter(range(100, 1000))

        async def report(device: str, state: DeviceState, detail: str) -> None:
            states.append((state, detail))

        ctx = SourceContext(
            site="wh1", gateway="dock-t", next_seq=lambda d: next(seq), report_state=report
        )
        # rate 0: the simulator scans only what the test tells it to.
        async with ScannerSimulator(ScannerSimConfig(rate_hz=0, terminator="\r")) as scanner:
            config = ScannerTcpSourceConfig(
                type="scanner_tcp",
                device="scanner-9",
                host=scanner.host,
                port=scanner.port,
                read_point=ReadPointConfig(door="door-7"),
                stage=Stage.DISPATCH,
            )
            source = ScannerTcpSource(config, ctx, backoff=Backoff(0.05, 0.1))
            events: list[Any] = []
            iterator = aiter(source)
            async with asyncio.timeout(10):
                reading = asyncio.ensure_future(anext(iterator))
                await scanner.wait_for_client()
                assert scanner.scan("00106141411234567897")
                assert scanner.scan("00106141411234567898", fault="bad_check_digit")
                assert scanner.scan("PKG-42", aim=None)
                assert scanner.scan("4006381333931", aim="]E0")
                events.append(await reading)
                while len(events) < 3:
                    events.append(await anext(iterator))
            await iterator.aclose()
        assert [(e.code, e.symbology) for e in events] == [
            ("00106141411234567897", "gs1-128"),
            ("PKG-42", None),
            ("4006381333931", "ean-13"),
        ]
        for event in events:
            assert event.device == "scanner-9" and event.code_kind is CodeKind.BARCODE
            assert event.read_point == ReadPoint(site="wh1", door="door-7")
            assert event.stage is Stage.DISPATCH
            assert event.device_time == event.received_at
        assert [e.seq for e in events] == [100, 101, 102]  # the rejected scan took no seq
        assert source.counters()["rejected_bad_check_digit"] == 1
        (rejection,) = source.last_rejections
        assert rejection.reason == "SSCC 106141411234567898: check digit 8 should be 7"
        assert states == [(DeviceState.ONLINE, f"connected to 127.0.0.1:{config.port}")]

    asyncio.run(scenario())
