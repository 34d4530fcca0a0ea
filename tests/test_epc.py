"""EPC decoding against the GS1 EPC Tag Data Standard's published examples."""

from __future__ import annotations

import pytest
from epcpy.epc_schemes import SGTIN
from epcpy.epc_schemes.sgtin import SGTINFilterValue
from hypothesis import given
from hypothesis import strategies as st

from identifiers.epc import DecodedEpc, UnknownEpc, decode_epc

# (hex, scheme, pure identity URI, key type, GS1 key, serial, filter): the TDS examples for
# company prefix 0614141 (TDS 1.x section 14.5 and appendix E), as epcpy decodes them.
TDS_EXAMPLES = [
    (
        "3074257BF7194E4000001A85",
        "sgtin-96",
        "urn:epc:id:sgtin:0614141.812345.6789",
        "gtin",
        "80614141123458",
        "6789",
        3,
    ),
    (
        "3174257BF4499602D2000000",
        "sscc-96",
        "urn:epc:id:sscc:0614141.1234567890",
        "sscc",
        "106141412345678908",
        None,
        3,
    ),
    (
        "3274257BF460720000000190",
        "sgln-96",
        "urn:epc:id:sgln:0614141.12345.400",
        "gln",
        "0614141123452",
        "400",
        3,
    ),
    (
        "3374257BF40C0E4000000190",
        "grai-96",
        "urn:epc:id:grai:0614141.12345.400",
        "grai",
        "0614141123452400",
        "400",
        3,
    ),
    (
        "3474257BF40000000000162E",
        "giai-96",
        "urn:epc:id:giai:0614141.5678",
        "giai",
        "06141415678",
        None,
        3,
    ),
    (
        "2D74257BF4499602D2000000",
        "gsrn-96",
        "urn:epc:id:gsrn:0614141.1234567890",
        "gsrn",
        "061414112345678902",
        None,
        3,
    ),
]


@pytest.mark.parametrize(("hex_", "scheme", "uri", "key_type", "key", "serial", "fv"), TDS_EXAMPLES)
def test_tds_examples_decode_to_their_gs1_keys(hex_, scheme, uri, key_type, key, serial, fv):
    epc = decode_epc(hex_)
    assert isinstance(epc, DecodedEpc)
    assert (epc.scheme, epc.epc_uri, epc.key_type) == (scheme, uri, key_type)
    assert (epc.gs1_key, epc.serial, epc.filter_value) == (key, serial, fv)


def test_sgtin_gives_the_element_string_a_barcode_would_carry():
    epc = decode_epc("30 74 25 7b f7 19 4e 40 00 00 1a 85")  # readers format hex differently
    assert isinstance(epc, DecodedEpc)
    assert epc.hex == "3074257BF7194E4000001A85"
    assert epc.gs1_element_string == "(01)80614141123458(21)6789"


def test_sgtin_198_keeps_an_alphanumeric_serial():
    epc = decode_epc("3674257BF6B7A659B2C2BF100000000000000000000000000000")
    assert isinstance(epc, DecodedEpc)
    assert (epc.scheme, epc.gs1_key, epc.serial) == ("sgtin-198", "70614141123451", "32a/b")


@pytest.mark.parametrize(
    ("hex_", "reason"),
    [
        ("E2801160600002054CC2096F", "header 0xE2 is not a GS1 EPC scheme"),  # a TID, not an EPC
        ("00000000000000000000000000", "header 0x00 is not a GS1 EPC scheme"),  # blank tag
        ("3074257BF7194E4000001A8", "not a valid sgtin-96"),  # 92 bits
        ("3314257BF4B4940000000002", "not a valid grai-96"),  # partition out of range
        ("30GG", "not hexadecimal"),
        ("", "not hexadecimal"),
    ],
)
def test_unknown_or_invalid_epcs_say_why(hex_, reason):
    epc = decode_epc(hex_)
    assert isinstance(epc, UnknownEpc)
    assert reason in epc.reason


@given(st.binary(min_size=0, max_size=40).map(bytes.hex))
def test_any_hex_decodes_or_says_why_without_raising(hex_):
    epc = decode_epc(hex_)
    assert epc.hex == hex_.upper()
    if isinstance(epc, DecodedEpc):
        assert epc.epc_uri.startswith("urn:epc:id:")


def _gtin14(digits13: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits13))
    return digits13 + str((10 - total % 10) % 10)


@given(
    company_len=st.integers(6, 12),
    digits=st.text("0123456789", min_size=13, max_size=13),
    serial=st.integers(0, 2**38 - 1),
    filter_value=st.sampled_from(list(SGTINFilterValue)),
)
def test_sgtin_96_round_trips_through_epcpy_encoding(company_len, digits, serial, filter_value):
    # digits = indicator + company prefix + item reference, as in a GTIN-14 without check digit
    indicator, company, item = digits[0], digits[1 : 1 + company_len], digits[1 + company_len :]
    uri = f"urn:epc:id:sgtin:{company}.{indicator}{item}.{serial}"
    hex_ = SGTIN(uri).hex(
        binary_coding_scheme=SGTIN.BinaryCodingScheme.SGTIN_96, filter_value=filter_value
    )
    epc = decode_epc(hex_)
    assert isinstance(epc, DecodedEpc)
    assert (epc.scheme, epc.epc_uri, epc.serial) == ("sgtin-96", uri, str(serial))
    assert epc.gs1_key == _gtin14(digits)
    assert epc.filter_value == int(filter_value.value)
