"""Identifiers Tracklane gives packages: SSCCs with their check digit, and SSCC-96 EPCs for
tagged packages. Pure (biip and epcpy are pure computation)."""

from __future__ import annotations

from biip.checksums import gs1_standard_check_digit
from epcpy.epc_schemes.sscc import SSCC, SSCCFilterValue


class CodeError(ValueError):
    """A company prefix or serial that cannot make a valid identifier; says why."""


def check_company_prefix(prefix: str) -> str:
    if not (prefix.isdigit() and prefix.isascii() and 6 <= len(prefix) <= 12):
        raise CodeError(f"GS1 company prefix {prefix!r} must be 6 to 12 digits")
    return prefix


def sscc_capacity(company_prefix: str) -> int:
    """How many serial references a company prefix leaves room for (per extension digit)."""
    return 10 ** (16 - len(check_company_prefix(company_prefix)))


def make_sscc(company_prefix: str, serial: int, extension: int = 0) -> str:
    """The 18-digit SSCC: extension digit, company prefix, serial reference, check digit."""
    capacity = sscc_capacity(company_prefix)
    if not 0 <= serial < capacity:
        raise CodeError(
            f"serial reference {serial} does not fit prefix {company_prefix} "
            f"({capacity:,} serials); use another extension digit or prefix"
        )
    if not 0 <= extension <= 9:
        raise CodeError(f"extension digit {extension} must be 0 to 9")
    body = f"{extension}{company_prefix}{serial:0{16 - len(company_prefix)}d}"
    return f"{body}{gs1_standard_check_digit(body)}"


def sscc_is_valid(sscc: str) -> bool:
    return (
        len(sscc) == 18
        and sscc.isdigit()
        and sscc.isascii()
        and gs1_standard_check_digit(sscc[:17]) == int(sscc[17])
    )


def sscc_epc96(sscc: str, company_prefix_length: int) -> str:
    """The SSCC-96 EPC (upper-case hex, as readers report it) to write on a package's tag."""
    if not sscc_is_valid(sscc):
        raise CodeError(f"{sscc!r} is not a valid SSCC")
    if not 6 <= company_prefix_length <= 12:
        raise CodeError(f"company prefix length {company_prefix_length} must be 6 to 12")
    epc = SSCC.from_gs1_element_string(f"(00){sscc}", company_prefix_length=company_prefix_length)
    return epc.hex(filter_value=SSCCFilterValue.FULL_CASE).upper()
