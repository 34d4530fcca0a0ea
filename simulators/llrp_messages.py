"""The reader side of LLRP 1.0.1, encoded with struct: the messages a fake reader sends. No I/O.

sllurp only encodes what a client sends, so the messages a reader sends are built here from
the spec (section numbers below are LLRP 1.0.1). A message is a 10-byte header (3 reserved
bits, 3-bit version, 10-bit type; 32-bit length including the header; 32-bit message id)
and a body of parameters: TLV (16-bit type, 16-bit length including its header) or, for the
fixed-size fields of a tag report, TV (1 bit set, 7-bit type, a value of fixed size).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 1
HEADER = struct.Struct("!HII")

# Message types (section 16.1): requests the fake reader understands -> their response type.
GET_READER_CAPABILITIES = 1
GET_READER_CAPABILITIES_RESPONSE = 11
KEEPALIVE = 62
KEEPALIVE_ACK = 72
RO_ACCESS_REPORT = 61
READER_EVENT_NOTIFICATION = 63
ENABLE_EVENTS_AND_REPORTS = 64
CLOSE_CONNECTION = 14
ERROR_MESSAGE = 100

RESPONSES: dict[int, tuple[int, str]] = {
    2: (12, "GET_READER_CONFIG"),
    3: (13, "SET_READER_CONFIG"),
    CLOSE_CONNECTION: (4, "CLOSE_CONNECTION"),
    20: (30, "ADD_ROSPEC"),
    21: (31, "DELETE_ROSPEC"),
    22: (32, "START_ROSPEC"),
    23: (33, "STOP_ROSPEC"),
    24: (34, "ENABLE_ROSPEC"),
    25: (35, "DISABLE_ROSPEC"),
    40: (50, "ADD_ACCESSSPEC"),
    41: (51, "DELETE_ACCESSSPEC"),
    42: (52, "ENABLE_ACCESSSPEC"),
    43: (53, "DISABLE_ACCESSSPEC"),
}

SUCCESS = 0
M_PARAMETER_ERROR = 100
M_UNSUPPORTED_MESSAGE = 109
C1G2_PROTOCOL = 1  # AirProtocols: EPCglobal Class 1 Gen 2


@dataclass(frozen=True, slots=True)
class Header:
    msg_type: int
    length: int
    msg_id: int
    version: int


def decode_header(data: bytes) -> Header:
    """The first 10 bytes of a message; `length` counts the header too."""
    word, length, msg_id = HEADER.unpack_from(data)
    return Header(word & 0x3FF, length, msg_id, (word >> 10) & 0x7)


def message(msg_type: int, msg_id: int, body: bytes = b"") -> bytes:
    return HEADER.pack((VERSION << 10) | msg_type, HEADER.size + len(body), msg_id) + body


def tlv(param_type: int, body: bytes = b"") -> bytes:
    return struct.pack("!HH", param_type, 4 + len(body)) + body


def tv(param_type: int, fmt: str, value: int | bytes) -> bytes:
    return bytes([0x80 | param_type]) + struct.pack("!" + fmt, value)


def llrp_status(code: int = SUCCESS, description: str = "") -> bytes:
    text = description.encode()
    return tlv(287, struct.pack("!HH", code, len(text)) + text)  # 16.2.8.1


def status_response(msg_type: int, msg_id: int, code: int = SUCCESS, why: str = "") -> bytes:
    """Any response that carries only an LLRPStatus (ADD_ROSPEC_RESPONSE and friends)."""
    return message(msg_type, msg_id, llrp_status(code, why))


def connection_attempt_event(msg_id: int, utc_us: int, status: int = SUCCESS) -> bytes:
    """READER_EVENT_NOTIFICATION with ConnectionAttemptEvent: a reader's first words (14.1.1)."""
    data = tlv(128, struct.pack("!Q", utc_us)) + tlv(256, struct.pack("!H", status))
    return message(READER_EVENT_NOTIFICATION, msg_id, tlv(246, data))


def keepalive(msg_id: int) -> bytes:
    return message(KEEPALIVE, msg_id)


@dataclass(frozen=True, slots=True)
class RfMode:
    """One row of the UHFC1G2RFModeTable (16.3.1.1.3); defaults: a dense-reader Miller-4 mode."""

    mode_id: int
    dr_64_3: bool = True
    epc_hag_conformance: bool = False
    modulation: int = 2  # M4
    forward_link: int = 3  # PR-ASK
    spectral_mask: int = 3  # dense interrogator
    bdr_bps: int = 256_000
    pie: int = 2000  # 2.0, in thousandths
    min_tari_ns: int = 25_000
    max_tari_ns: int = 25_000
    step_tari_ns: int = 0


@dataclass(frozen=True, slots=True)
class Capabilities:
    antennas: int = 4
    tx_power_dbm: tuple[float, ...] = tuple(10 + 0.25 * i for i in range(81))  # 10..30 dBm
    rf_modes: tuple[RfMode, ...] = (RfMode(1000), RfMode(1002, modulation=3, bdr_bps=160_000))
    manufacturer_pen: int = 0  # IANA enterprise number; 0 = none, a simulator
    model: int = 1
    firmware: str = "tracklane-sim 1"
    country_code: int = 840
    hop_table_khz: tuple[int, ...] = (902_750, 915_250, 927_250)


def capabilities_response(msg_id: int, caps: Capabilities) -> bytes:
    """GET_READER_CAPABILITIES_RESPONSE (16.1.2) with everything sllurp reads from it."""
    firmware = caps.firmware.encode()
    general = struct.pack(
        "!HHIIH", caps.antennas, 0x4000, caps.manufacturer_pen, caps.model, len(firmware)
    )  # flags: HasUTCClockCapability
    general += firmware + tlv(139, struct.pack("!Hh", 1, 0))  # one receive sensitivity
    for antenna in range(1, caps.antennas + 1):
        general += tlv(140, struct.pack("!HHB", antenna, 1, C1G2_PROTOCOL))
    general += tlv(141, struct.pack("!HH", 0, 0))  # no GPIs or GPOs
    llrp = struct.pack("!BBHIIIII", 0, 0, 0, 1, 1, 1, 0, 0)
    band = b"".join(
        tlv(145, struct.pack("!Hh", index, round(dbm * 100)))
        for index, dbm in enumerate(caps.tx_power_dbm, start=1)
    )
    hops = struct.pack("!BBH", 1, 0, len(caps.hop_table_khz))
    hops += b"".join(struct.pack("!I", khz) for khz in caps.hop_table_khz)
    band += tlv(146, bytes([0x80]) + tlv(147, hops))  # FrequencyInformation, hopping
    band += tlv(328, b"".join(tlv(329, _rf_mode(mode)) for mode in caps.rf_modes))
    regulatory = struct.pack("!HH", caps.country_code, 1) + tlv(144, band)  # 1: US FCC part 15
    body = (
        llrp_status()
        + tlv(137, general)
        + tlv(142, llrp)
        + tlv(143, regulatory)
        + tlv(188, struct.pack("!BH", 0, 0))  # C1G2LLRPCapabilities
    )
    return message(GET_READER_CAPABILITIES_RESPONSE, msg_id, body)


def _rf_mode(mode: RfMode) -> bytes:
    rc = (0x80 if mode.dr_64_3 else 0) | (0x40 if mode.epc_hag_conformance else 0)
    return struct.pack(
        "!IBBBBIIIII",
        mode.mode_id,
        rc,
        mode.modulation,
        mode.forward_link,
        mode.spectral_mask,
        mode.bdr_bps,
        mode.pie,
        mode.min_tari_ns,
        mode.max_tari_ns,
        mode.step_tari_ns,
    )


@dataclass(frozen=True, slots=True)
class TagObservation:
    """What a reader reports for one tag on one antenna since its last report."""

    epc: bytes  # 12 bytes: EPC-96
    antenna: int
    peak_rssi_dbm: int
    first_seen_us: int
    last_seen_us: int
    seen_count: int = 1

    def __post_init__(self) -> None:
        if len(self.epc) != 12:
            raise ValueError(f"EPC-96 is 12 bytes, got {len(self.epc)}")


def tag_report_data(tag: TagObservation) -> bytes:
    """TagReportData (16.2.7.3) with TV fields in the order the spec lists them."""
    return tlv(
        240,
        bytes([0x80 | 13])
        + tag.epc
        + tv(1, "H", tag.antenna)
        + tv(6, "b", max(-128, min(127, tag.peak_rssi_dbm)))
        + tv(2, "Q", tag.first_seen_us)
        + tv(4, "Q", tag.last_seen_us)
        + tv(8, "H", min(tag.seen_count, 0xFFFF)),
    )


def ro_access_report(msg_id: int, tags: list[TagObservation]) -> bytes:
    return message(RO_ACCESS_REPORT, msg_id, b"".join(tag_report_data(t) for t in tags))


# --- what a client asks for: the parts of ADD_ROSPEC (16.1.3) a test wants to check ---

ADD_ROSPEC = 20


@dataclass(frozen=True, slots=True)
class AntennaSettings:
    """One AntennaConfiguration (16.2.6.6) of an ROSpec; None where the client left it out."""

    antenna: int
    tx_power_index: int | None = None  # into the capabilities' power table, from 1
    session: int | None = None
    tag_population: int | None = None
    mode_index: int | None = None


@dataclass(frozen=True, slots=True)
class RoSpec:
    rospec_id: int
    antennas: tuple[int, ...]  # the AISpec's AntennaIDs
    settings: tuple[AntennaSettings, ...]


def _params(data: bytes) -> list[tuple[int, bytes]]:
    """The TLV parameters in `data` as (type, body); refuses TV ones (none occur here)."""
    out, at = [], 0
    while at + 4 <= len(data):
        kind, length = struct.unpack_from("!HH", data, at)
        if kind & 0x8000 or length < 4 or at + length > len(data):
            raise ValueError(f"not a TLV parameter at byte {at}: type {kind}, length {length}")
        out.append((kind & 0x3FF, data[at + 4 : at + length]))
        at += length
    return out


def _antenna_settings(body: bytes) -> AntennaSettings:
    (antenna,) = struct.unpack_from("!H", body)
    found: dict[str, int] = {}
    for kind, par in _params(body[2:]):
        if kind == 224:  # RFTransmitter: HopTableId, ChannelIndex, TransmitPower
            found["tx_power_index"] = struct.unpack_from("!HHH", par)[2]
        elif kind == 330:  # C1G2InventoryCommand: a flags byte, then parameters
            for inner, value in _params(par[1:]):
                if inner == 335:  # C1G2RFControl: ModeIndex, Tari
                    found["mode_index"] = struct.unpack_from("!H", value)[0]
                elif inner == 336:  # C1G2SingulationControl: Session in the top 2 bits
                    session, population = struct.unpack_from("!BH", value)
                    found |= {"session": session >> 6, "tag_population": population}
    return AntennaSettings(antenna, **found)


def decode_add_rospec(body: bytes) -> RoSpec:
    """ADD_ROSPEC's body (after the header): the antennas and their radio settings."""
    ((kind, rospec),) = _params(body)
    if kind != 177:
        raise ValueError(f"ADD_ROSPEC carries parameter type {kind}, not ROSpec (177)")
    (rospec_id,) = struct.unpack_from("!I", rospec)
    antennas: tuple[int, ...] = ()
    settings: list[AntennaSettings] = []
    for kind, ai in _params(rospec[6:]):
        if kind != 183:  # AISpec: AntennaCount, AntennaIDs, then parameters
            continue
        (count,) = struct.unpack_from("!H", ai)
        antennas += struct.unpack_from(f"!{count}H", ai, 2)
        for inner, spec in _params(ai[2 + 2 * count :]):
            if inner == 186:  # InventoryParameterSpec: ID, ProtocolID, then parameters
                settings += [_antenna_settings(p) for k, p in _params(spec[3:]) if k == 222]
    return RoSpec(rospec_id, antennas, tuple(settings))
