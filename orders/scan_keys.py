"""The keys a stored scan can be matched by: the tag's EPC, an SSCC, a GTIN, or a label. Pure.

A gateway already normalized the code (a GS1 element string without brackets, EAN digits, an
EPC in hex), but ingest accepts scans from any publisher, so every code is checked again here
and a bad one is `invalid` with the reason, never matched by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from biip.checksums import gs1_standard_check_digit

from event_contract import CodeKind
from identifiers.epc import DecodedEpc, decode_epc, normalize_epc_hex
from identifiers.gs1 import Rejected, check_code


@dataclass(frozen=True, slots=True)
class ScanKeys:
    epc: str | None = None  # a tag's EPC, upper-case hex: a package's own tag
    sscc: str | None = None  # 18 digits, from AI (00) or an SSCC-96 tag
    gtin: str | None = None  # GTIN-14, from AI (01), EAN/UPC or an SGTIN tag
    label: str | None = None  # a plain code: an order's own label (its number)
    invalid: str | None = None  # why the code cannot be what it claims to be
    bad_check_digit: bool = False


# The code nearly every dock scan carries: an SSCC label, AI (00) and 18 digits, nothing else.
_SSCC_LABEL = re.compile(r"00([0-9]{18})")
_ELEMENT_STRINGS = frozenset({"gs1-128", "gs1-databar", "gs1-datamatrix", "gs1-qr"})


def _plain_sscc(code: str) -> str | None:
    """A scanner without AIM identifiers sends an SSCC label as 20 digits ("00" + SSCC) or 18."""
    digits = code[2:] if len(code) == 20 and code.startswith("00") else code
    if len(digits) == 18 and digits.isdigit() and digits.isascii():
        result = check_code(f"00{digits}", "gs1-128")
        if not isinstance(result, Rejected):
            return digits
    return None


def scan_keys(code: str, code_kind: CodeKind | str, symbology: str | None) -> ScanKeys:
    if CodeKind(code_kind) is CodeKind.EPC:
        epc = normalize_epc_hex(code)
        decoded = decode_epc(epc)
        if not isinstance(decoded, DecodedEpc):
            return ScanKeys(epc=epc)  # a blank or vendor tag may still be a package's own EPC
        if decoded.key_type == "sscc":
            return ScanKeys(epc=epc, sscc=decoded.gs1_key)
        if decoded.key_type == "gtin":
            return ScanKeys(epc=epc, gtin=decoded.gs1_key)
        return ScanKeys(epc=epc)
    label = _SSCC_LABEL.fullmatch(code) if symbology in _ELEMENT_STRINGS else None
    if label is not None:  # a fast path for the commonest code; the same answer as biip's
        sscc = label.group(1)
        if gs1_standard_check_digit(sscc[:17]) == int(sscc[17]):
            return ScanKeys(sscc=sscc)
    result = check_code(code, symbology)
    if isinstance(result, Rejected):
        return ScanKeys(invalid=result.reason, bad_check_digit=result.kind == "bad_check_digit")
    if result.is_gs1:
        return ScanKeys(sscc=result.ais.get("00"), gtin=result.ais.get("01"))
    sscc = _plain_sscc(result.code)
    if sscc is not None:
        return ScanKeys(sscc=sscc, label=result.code)
    return ScanKeys(label=result.code)
