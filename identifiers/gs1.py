"""GS1 checks for scanned codes: element strings and check digits, with biip. Pure, no I/O.

`check_code(data, symbology)` takes a scanned code (AIM identifier already stripped by
`parse_scan_line`) and returns `Accepted` or `Rejected`:

- GS1 symbologies carrying element strings (`gs1-128`, `gs1-databar`, `gs1-datamatrix`,
  `gs1-qr`) are parsed into application identifiers; every AI with a mod-10 check digit
  that biip knows (SSCC, GTIN, GLN) must have the right one.
- EAN/UPC symbologies (`ean-13`, `ean-8`) are a GTIN and must have the right check digit.
- Anything else (plain Code 128, Code 39, an unknown or missing AIM identifier) passes
  through as a plain code: without the identifier we cannot know it is GS1 data.

The normalized code of a GS1 element string is the element string itself, AIs unbracketed,
in scanned order, with a group separator (ASCII 29) only where GS1 requires one: after a
variable-length AI that is not last. An SSCC label is therefore `"00" + 18 digits`, exactly
what the scanner sent, and leading or trailing separators a scanner adds are dropped.
EAN/UPC codes keep their digits as scanned; their GTIN-14 is in `ais["01"]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

GS = "\x1d"  # ASCII 29, the group separator that stands for FNC1 inside the data

ELEMENT_STRING_SYMBOLOGIES = frozenset({"gs1-128", "gs1-databar", "gs1-datamatrix", "gs1-qr"})
GTIN_SYMBOLOGIES: Mapping[str, int] = MappingProxyType({"ean-13": 13, "ean-8": 8})
"""EAN/UPC symbology -> digits it carries (UPC-A arrives as EAN-13 with a leading 0)."""

RejectKind = Literal["bad_check_digit", "bad_element_string", "bad_gtin"]


@dataclass(frozen=True, slots=True)
class Accepted:
    code: str
    """The normalized code (see the module docstring); what a ScanEvent carries."""
    symbology: str | None
    ais: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """AI -> value, e.g. {"00": "106141411234567897"}; empty for a plain code."""

    @property
    def is_gs1(self) -> bool:
        return bool(self.ais)


@dataclass(frozen=True, slots=True)
class Rejected:
    code: str
    """The data as scanned, so the dock can show what was read."""
    symbology: str | None
    kind: RejectKind
    """A short, fixed name to count rejections by."""
    reason: str
    """For people: "SSCC 106141411234567898: check digit 8 should be 7"."""


CheckResult = Accepted | Rejected


def check_code(data: str, symbology: str | None) -> CheckResult:
    """Validate and normalize one scanned code; see the module docstring."""
    if symbology in ELEMENT_STRING_SYMBOLOGIES:
        return _check_element_string(data, symbology)
    if symbology in GTIN_SYMBOLOGIES:
        return _check_gtin(data, symbology, GTIN_SYMBOLOGIES[symbology])
    return Accepted(data, symbology)


def check_digit_error(title: str, digits: str) -> str | None:
    """`"SSCC 1061...8: check digit 8 should be 7"`, or None when the check digit is right."""
    if not digits.isdigit() or len(digits) < 2:
        return f"{title} {digits!r}: not a number with a check digit"
    expected = gs1_standard_check_digit(digits[:-1])
    if int(digits[-1]) == expected:
        return None
    return f"{title} {digits}: check digit {digits[-1]} should be {expected}"


def _check_element_string(data: str, symbology: str) -> CheckResult:
    body = data.strip(GS)
    try:
        message = GS1Message.parse(body)
    except ParseError as err:
        return Rejected(data, symbology, "bad_element_string", f"not a GS1 element string: {err}")
    elements = message.element_strings
    if not elements:
        return Rejected(data, symbology, "bad_element_string", "no GS1 element string in the code")
    ais: dict[str, str] = {}
    parts: list[str] = []
    for i, element in enumerate(elements):
        ai = element.ai.ai
        # biip parses these AIs into typed values and reports a wrong check digit as an error.
        if element.sscc_error or element.gtin_error or element.gln_error:
            reason = check_digit_error(element.ai.data_title, element.value)
            if reason is not None:
                return Rejected(data, symbology, "bad_check_digit", reason)
            error = element.sscc_error or element.gtin_error or element.gln_error
            return Rejected(data, symbology, "bad_element_string", f"AI ({ai}): {error}")
        if ai in ais:
            return Rejected(data, symbology, "bad_element_string", f"AI ({ai}) appears twice")
        ais[ai] = element.value
        separator = GS if element.ai.separator_required and i < len(elements) - 1 else ""
        parts.append(f"{ai}{element.value}{separator}")
    return Accepted("".join(parts), symbology, MappingProxyType(ais))


def _check_gtin(data: str, symbology: str, digits: int) -> CheckResult:
    name = symbology.upper()
    if not data.isdigit() or len(data) != digits:
        return Rejected(data, symbology, "bad_gtin", f"{name} {data!r}: expected {digits} digits")
    reason = check_digit_error(name, data)
    if reason is not None:
        return Rejected(data, symbology, "bad_check_digit", reason)
    try:
        gtin = Gtin.parse(data)
    except ParseError as err:  # e.g. a GTIN-13 that biip knows cannot exist
        return Rejected(data, symbology, "bad_gtin", f"{name} {data}: {err}")
    return Accepted(data, symbology, MappingProxyType({"01": gtin.as_gtin_14()}))
