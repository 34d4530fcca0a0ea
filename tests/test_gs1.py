"""GS1 checks on scanned codes: element strings, check digits, plain codes passing through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sources.scanner import parse_scan_line
from identifiers.gs1 import GS, Accepted, Rejected, check_code
from simulators.scanner import gs1_check_digit

# Scanner lines as a scanner sends them (AIM identifier first), with the GS1 examples from
# the GS1 General Specifications and the well-known EAN/UPC examples, and what they must give.
ACCEPTED = [
    # GS1's SSCC example: extension 1, company prefix 0614141, serial 123456789.
    ("]C100106141411234567897", "00106141411234567897", {"00": "106141411234567897"}),
    # GS1's GTIN example with a net weight (3103, fixed length: no separator needed).
    (
        "]C101095212345432133103000123",
        "01095212345432133103000123",
        {"01": "09521234543213", "3103": "000123"},
    ),
    # Batch (10) is variable length: the GS after it must be kept, a leading FNC1 dropped.
    (
        f"]d2{GS}010952123454321310ABC123{GS}1719123121XYZ{GS}",
        f"010952123454321310ABC123{GS}1719123121XYZ",
        {"01": "09521234543213", "10": "ABC123", "17": "191231", "21": "XYZ"},
    ),
    ("]Q30100614141999996", "0100614141999996", {"01": "00614141999996"}),
    ("]e00109521234543213", "0109521234543213", {"01": "09521234543213"}),
    ("]E04006381333931", "4006381333931", {"01": "04006381333931"}),  # EAN-13
    ("]E00036000291452", "0036000291452", {"01": "00036000291452"}),  # UPC-A as EAN-13
    ("]E496385074", "96385074", {"01": "00000096385074"}),  # EAN-8
    # Not GS1: passed through as scanned, whatever the digits look like.
    ("]C000106141411234567898", "00106141411234567898", {}),  # Code 128 without FNC1
    ("00106141411234567898", "00106141411234567898", {}),  # no AIM identifier at all
    ("]A0PKG-42", "PKG-42", {}),
    ("]X9anything", "anything", {}),
]

REJECTED = [
    (
        "]C100006141410000000242",
        "bad_check_digit",
        "SSCC 006141410000000242: check digit 2 should be 1",
    ),
    (
        "]C100106141411234567898",
        "bad_check_digit",
        "SSCC 106141411234567898: check digit 8 should be 7",
    ),
    ("]Q30100614141999997", "bad_check_digit", "GTIN 00614141999997: check digit 7 should be 6"),
    ("]E04006381333932", "bad_check_digit", "EAN-13 4006381333932: check digit 2 should be 1"),
    ("]E496385075", "bad_check_digit", "EAN-8 96385075: check digit 5 should be 4"),
    ("]C1001061414112", "bad_element_string", "AI (00)"),  # a misread: SSCC cut short
    ("]C10109521234543213172513321", "bad_element_string", "AI (17)"),  # month 13
    ("]C1PKG-42", "bad_element_string", "not a GS1 element string"),
    ("]C1 ", "bad_element_string", "no GS1 element string"),
    ("]E0400638133393", "bad_gtin", "expected 13 digits"),
]


def check_line(line: str) -> Accepted | Rejected:
    scan = parse_scan_line(line)
    assert scan is not None
    return check_code(scan.code, scan.symbology)


@pytest.mark.parametrize(("line", "code", "ais"), ACCEPTED)
def test_real_codes_are_accepted_and_normalized(line: str, code: str, ais: dict[str, str]) -> None:
    result = check_line(line)
    assert isinstance(result, Accepted), result
    assert (result.code, dict(result.ais)) == (code, ais)
    assert result.symbology == parse_scan_line(line).symbology  # type: ignore[union-attr]


@pytest.mark.parametrize(("line", "kind", "reason"), REJECTED)
def test_bad_codes_are_rejected_with_the_reason(line: str, kind: str, reason: str) -> None:
    result = check_line(line)
    assert isinstance(result, Rejected), result
    assert result.kind == kind
    assert reason in result.reason
    assert result.code == parse_scan_line(line).code  # type: ignore[union-attr]


def with_check_digit(body: str) -> str:
    return f"{body}{gs1_check_digit(body)}"


def change_one_digit(digits: str, at: int, bump: int) -> str:
    at %= len(digits)
    return f"{digits[:at]}{(int(digits[at]) + bump) % 10}{digits[at + 1 :]}"


ssccs = st.text("0123456789", min_size=17, max_size=17).map(with_check_digit)
gtin14s = st.text("0123456789", min_size=13, max_size=13).map(with_check_digit)
ean13s = st.text("0123456789", min_size=12, max_size=12).map(with_check_digit)
ean8s = st.text("0123456789", min_size=7, max_size=7).map(with_check_digit)
gs1_symbologies = st.sampled_from(["gs1-128", "gs1-databar", "gs1-datamatrix", "gs1-qr"])


@given(sscc=ssccs, symbology=gs1_symbologies)
def test_any_valid_sscc_is_accepted_and_round_trips(sscc: str, symbology: str) -> None:
    result = check_code(f"00{sscc}", symbology)
    assert result == Accepted(f"00{sscc}", symbology, {"00": sscc})
    assert check_code(result.code, symbology) == result  # normalizing is idempotent


@given(sscc=ssccs, at=st.integers(0, 17), bump=st.integers(1, 9))
def test_any_single_digit_change_in_an_sscc_is_rejected(sscc: str, at: int, bump: int) -> None:
    wrong = change_one_digit(sscc, at, bump)
    result = check_code(f"00{wrong}", "gs1-128")
    assert isinstance(result, Rejected) and result.kind == "bad_check_digit"
    expected = gs1_check_digit(wrong[:17])
    assert result.reason == f"SSCC {wrong}: check digit {wrong[17]} should be {expected}"


@given(gtin=gtin14s, at=st.integers(0, 13), bump=st.integers(1, 9))
def test_gtin_in_an_element_string_is_checked(gtin: str, at: int, bump: int) -> None:
    assert check_code(f"01{gtin}", "gs1-128") == Accepted(f"01{gtin}", "gs1-128", {"01": gtin})
    result = check_code(f"01{change_one_digit(gtin, at, bump)}", "gs1-128")
    assert isinstance(result, Rejected) and result.kind == "bad_check_digit"


@given(
    code=st.one_of(ean13s.map(lambda c: ("ean-13", c)), ean8s.map(lambda c: ("ean-8", c))),
    at=st.integers(0, 12),
    bump=st.integers(1, 9),
)
def test_ean_codes_are_checked(code: tuple[str, str], at: int, bump: int) -> None:
    symbology, value = code
    result = check_code(value, symbology)
    assert isinstance(result, Accepted) and result.code == value
    assert result.ais["01"] == value.zfill(14)
    wrong = check_code(change_one_digit(value, at, bump), symbology)
    assert isinstance(wrong, Rejected) and wrong.kind == "bad_check_digit"


batch = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20
)


@given(gtin=gtin14s, lot=batch, serial=batch, lead=st.booleans(), trail=st.booleans())
def test_variable_length_ais_need_and_keep_their_separator(
    gtin: str, lot: str, serial: str, lead: bool, trail: bool
) -> None:
    normalized = f"01{gtin}10{lot}{GS}21{serial}"
    scanned = f"{GS if lead else ''}{normalized}{GS if trail else ''}"
    result = check_code(scanned, "gs1-datamatrix")
    assert result == Accepted(normalized, "gs1-datamatrix", {"01": gtin, "10": lot, "21": serial})
    assert check_code(result.code, "gs1-datamatrix") == result


@given(
    code=st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1),
    symbology=st.sampled_from([None, "code-128", "code-39", "itf", "datamatrix", "qr"]),
)
def test_codes_not_marked_gs1_pass_through_unchanged(code: str, symbology: str | None) -> None:
    assert check_code(code, symbology) == Accepted(code, symbology, {})
