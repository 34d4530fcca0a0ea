"""SSCCs and SSCC-96 EPCs made for packages: valid, and read back by the same decoders."""

from __future__ import annotations

import pytest
from biip import ParseConfig, parse
from hypothesis import given
from hypothesis import strategies as st

from orders.codes import CodeError, make_sscc, sscc_epc96, sscc_is_valid


def test_the_gs1_example_sscc_is_made_with_its_check_digit():
    # The EPC Tag Data Standard's example: urn:epc:id:sscc:0614141.1234567890 is this SSCC.
    assert make_sscc("0614141", 234567890, extension=1) == "106141412345678908"


@given(
    prefix=st.text("0123456789", min_size=6, max_size=12),
    data=st.data(),
    extension=st.integers(0, 9),
)
def test_every_sscc_made_is_valid_and_biip_agrees(prefix, data, extension):
    serial = data.draw(st.integers(0, 10 ** (16 - len(prefix)) - 1))
    sscc = make_sscc(prefix, serial, extension)
    assert len(sscc) == 18 and sscc_is_valid(sscc)
    parsed = parse(f"00{sscc}", config=ParseConfig(separator_chars=["\x1d"]))
    assert parsed.sscc is not None and parsed.sscc.value == sscc


def test_a_wrong_check_digit_is_not_valid():
    assert not sscc_is_valid("106141411234567890")
    assert not sscc_is_valid("10614141123456789")


def test_a_serial_that_does_not_fit_says_so():
    with pytest.raises(CodeError, match="does not fit"):
        make_sscc("061414112345", 10_000)
    with pytest.raises(CodeError, match="6 to 12 digits"):
        make_sscc("12345", 1)


def test_the_epc_written_on_a_tag_decodes_back_to_the_sscc():
    from identifiers.epc import decode_epc

    sscc = make_sscc("0614141", 234567890, extension=1)
    epc = sscc_epc96(sscc, 7)
    assert epc == "3154257BF4499602D2000000"  # header 0x31, filter 2 (full case), partition 5
    decoded = decode_epc(epc)
    assert decoded.gs1_key == sscc  # type: ignore[union-attr]
