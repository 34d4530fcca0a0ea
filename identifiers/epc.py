"""EPC decoding: the hex a reader reports to its scheme and GS1 keys, with epcpy. No I/O.

`decode_epc` never raises: a tag that is not GS1-encoded (a blank or vendor-programmed
tag, a TID read as EPC) is normal on a dock, so it gets an `UnknownEpc` with a reason and
the scan is still published under its hex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from epcpy import ConvertException, hex_to_tag_encodable

# EPC binary header (first byte) -> scheme name, as in the GS1 EPC Tag Data Standard table 14-1.
EPC_HEADERS: dict[int, str] = {
    0x2C: "gdti-96",
    0x2D: "gsrn-96",
    0x2E: "gsrnp-96",
    0x2F: "usdod-96",
    0x30: "sgtin-96",
    0x31: "sscc-96",
    0x32: "sgln-96",
    0x33: "grai-96",
    0x34: "giai-96",
    0x35: "gid-96",
    0x36: "sgtin-198",
    0x37: "grai-170",
    0x38: "giai-202",
    0x39: "sgln-195",
    0x3B: "adi-var",
    0x3C: "cpi-96",
    0x3D: "cpi-var",
    0x3E: "gdti-174",
    0x3F: "sgcn-96",
}


@dataclass(frozen=True, slots=True)
class _Family:
    key_type: str | None
    """What `gs1_key` is: "gtin", "sscc", ... (None: the scheme has no GS1 key)."""
    serial_in_uri: bool
    """Whether the last component of the pure-identity URI is a serial number."""
    filter_bits: int = 3
    """Width of the filter value after the header (GID has none, ADI six bits)."""


_FAMILIES: dict[str, _Family] = {
    "sgtin": _Family("gtin", True),
    "sscc": _Family("sscc", False),
    "sgln": _Family("gln", True),  # the serial is the GLN extension, AI (254)
    "grai": _Family("grai", True),
    "giai": _Family("giai", False),
    "gsrn": _Family("gsrn", False),
    "gsrnp": _Family("gsrnp", False),
    "gdti": _Family("gdti", True),
    "sgcn": _Family("sgcn", True),
    "cpi": _Family(None, True),
    "gid": _Family(None, True, filter_bits=0),
    "usdod": _Family(None, True),
    "adi": _Family(None, True, filter_bits=6),
}

_HEX = re.compile(r"^[0-9A-F]+$")


@dataclass(frozen=True, slots=True)
class DecodedEpc:
    hex: str
    scheme: str
    """"sgtin-96", "sscc-96", ..."""
    epc_uri: str
    """The pure identity, e.g. urn:epc:id:sgtin:0614141.812345.6789."""
    filter_value: int | None
    """The tag's filter (3 for a shipping unit, 1 for a point-of-sale item ...)."""
    key_type: str | None
    gs1_key: str | None
    """GTIN-14 for an SGTIN, the SSCC, GLN, GRAI (with serial), GIAI ...; as epcpy gives it."""
    serial: str | None
    gs1_element_string: str | None
    """E.g. (01)80614141123458(21)6789, ready for the same checks as a barcode."""


@dataclass(frozen=True, slots=True)
class UnknownEpc:
    hex: str
    reason: str


def normalize_epc_hex(value: str) -> str:
    """Upper-case hex without spaces, dashes or a 0x prefix (readers and configs differ)."""
    text = value.strip().replace(" ", "").replace("-", "").upper()
    return text.removeprefix("0X")


def decode_epc(value: str) -> DecodedEpc | UnknownEpc:
    """Decode an EPC given as hex; an UnknownEpc says why not."""
    text = normalize_epc_hex(value)
    if not text or not _HEX.match(text):
        return UnknownEpc(text, f"EPC {value!r} is not hexadecimal")
    if len(text) < 2:
        return UnknownEpc(text, f"EPC {text} is too short for a header")
    header = int(text[:2], 16)
    scheme = EPC_HEADERS.get(header)
    if scheme is None:
        return UnknownEpc(text, f"EPC header 0x{header:02X} is not a GS1 EPC scheme")
    try:
        identity = hex_to_tag_encodable(text)
    except (ConvertException, ValueError, IndexError) as err:
        return UnknownEpc(text, f"EPC {text} is not a valid {scheme}: {_message(err)}")
    family = _FAMILIES.get(scheme.split("-")[0], _Family(None, False))
    uri = identity.epc_uri
    gs1_key = identity.gs1_key() if hasattr(identity, "gs1_key") else None
    element = identity.gs1_element_string() if hasattr(identity, "gs1_element_string") else None
    return DecodedEpc(
        hex=text,
        scheme=scheme,
        epc_uri=uri,
        filter_value=_filter_value(text, family.filter_bits),
        key_type=family.key_type,
        gs1_key=gs1_key,
        serial=unquote(uri.rsplit(".", 1)[-1]) if family.serial_in_uri else None,
        gs1_element_string=element,
    )


def _message(err: Exception) -> str:
    # epcpy's ConvertException keeps its text in `.message`, not in args.
    return str(getattr(err, "message", None) or err or type(err).__name__)


def _filter_value(text: str, bits: int) -> int | None:
    if bits == 0:
        return None
    after_header = int(text[2:4], 16)  # decoding succeeded, so the EPC is longer than this
    return after_header >> (8 - bits)
