"""The fake LLRP reader: exact bytes of its messages, and sllurp really talking to it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sllurp.llrp import LLRPMessage, LLRPReaderClient, LLRPReaderConfig

from edge_agent.config import RfidLlrpSourceConfig
from edge_agent.sources import SourceContext
from edge_agent.sources.rfid_llrp import RfidLlrpSource, tag_reads
from edge_agent.sources.rfid_smoothing import TagRead
from event_contract import CodeKind, DeviceState, ReadPoint, Stage
from simulators import llrp_messages as m
from simulators.llrp_reader import REFUSED_ALREADY_CONNECTED, FakeLlrpReader

EPC = bytes.fromhex("3074257BF7194E4000001A85")  # the TDS SGTIN-96 example
TAG = m.TagObservation(EPC, antenna=2, peak_rssi_dbm=-52, first_seen_us=10**6,
                       last_seen_us=2 * 10**6, seen_count=17)  # fmt: skip


def _hex(*parts: str) -> bytes:
    return bytes.fromhex("".join(parts))


def _sllurp(data: bytes) -> dict:
    """How sllurp decodes our bytes: the test that counts, since sllurp is the real client."""
    msg = LLRPMessage(msgbytes=data)
    return msg.msgdict[msg.getName()]


def test_connection_attempt_event_bytes():
    data = m.connection_attempt_event(7, 1_700_000_000_000_000)
    assert data == _hex(
        "043f", "00000020", "00000007",  # ver 1, type 63; length 32; id 7
        "00f6", "0016",  # ReaderEventNotificationData, 22 bytes
        "0080", "000c", "00060a24181e4000",  # UTCTimestamp, microseconds
        "0100", "0006", "0000",  # ConnectionAttemptEvent: Success
    )  # fmt: skip
    event = _sllurp(data)["ReaderEventNotificationData"]
    assert event["ConnectionAttemptEvent"]["Status"] == "Success"
    assert event["UTCTimestamp"]["Microseconds"] == 1_700_000_000_000_000


def test_ro_access_report_bytes():
    data = m.ro_access_report(9, [TAG])
    assert data == _hex(
        "043d", "00000035", "00000009",  # ver 1, type 61 (RO_ACCESS_REPORT); 53 bytes; id 9
        "00f0", "002b",  # TagReportData, 43 bytes
        "8d", "3074257bf7194e4000001a85",  # TV 13: EPC-96
        "81", "0002",  # TV 1: AntennaID 2
        "86", "cc",  # TV 6: PeakRSSI -52 dBm
        "82", "00000000000f4240",  # TV 2: FirstSeenTimestampUTC
        "84", "00000000001e8480",  # TV 4: LastSeenTimestampUTC
        "88", "0011",  # TV 8: TagSeenCount 17
    )  # fmt: skip
    (tag,) = _sllurp(data)["TagReportData"]
    assert tag["EPC-96"] == b"3074257bf7194e4000001a85"
    assert (tag["AntennaID"], tag["PeakRSSI"], tag["TagSeenCount"]) == (2, -52, 17)
    assert (tag["FirstSeenTimestampUTC"], tag["LastSeenTimestampUTC"]) == (10**6, 2 * 10**6)


def test_status_response_bytes():
    data = m.status_response(30, 5)  # ADD_ROSPEC_RESPONSE
    assert data == _hex("041e", "00000012", "00000005", "011f", "0008", "0000", "0000")
    assert _sllurp(data)["LLRPStatus"]["StatusCode"] == "Success"


def test_capabilities_carry_antennas_power_table_and_rf_modes():
    caps = m.Capabilities(
        antennas=2, tx_power_dbm=(10.0, 30.0), rf_modes=(m.RfMode(1000),), firmware="fw1"
    )
    data = m.capabilities_response(3, caps)
    assert data[:10] == _hex("040b", f"{len(data):08x}", "00000003")
    assert _hex("0091", "0008", "0001", "03e8") in data  # power entry 1: 10.00 dBm
    assert _hex("0091", "0008", "0002", "0bb8") in data  # power entry 2: 30.00 dBm
    assert _hex("0149", "0020", "000003e8", "80", "02", "03", "03") in data  # mode 1000, M4
    decoded = _sllurp(data)
    assert decoded["GeneralDeviceCapabilities"]["MaxNumberOfAntennaSupported"] == 2
    assert decoded["GeneralDeviceCapabilities"]["ReaderFirmwareVersion"] == b"fw1"
    band = decoded["RegulatoryCapabilities"]["UHFBandCapabilities"]
    assert [e["TransmitPowerValue"] for e in band["TransmitPowerLevelTableEntry"]] == [1000, 3000]
    (mode,) = band["UHFC1G2RFModeTable"]["UHFC1G2RFModeTableEntry"]
    assert (mode["ModeIdentifier"], mode["Mod"], mode["BDR"]) == (1000, 2, 256_000)


def test_an_epc_that_is_not_96_bits_is_refused():
    with pytest.raises(ValueError, match="12 bytes"):
        m.TagObservation(EPC[:8], 1, -50, 0, 0)


# ADD_ROSPEC as sllurp encodes it: antennas 1 and 3, power indices 5 and 81, session 2,
# tag population 16, RF mode 1002 (LLRPROSpec with tag_content_selector={}).
ADD_ROSPEC = _hex(
    "0414000000a200000007",  # ver 1, type 20 (ADD_ROSPEC); 162 bytes; id 7
    "00b10098", "00000001", "0000",  # ROSpec: id 1, priority 0, state Disabled
    "00b20012", "00b3000501", "00b600090000000000",  # ROBoundarySpec: start now, no stop
    "00b7006a", "0002", "0001", "0003",  # AISpec: antennas 1, 3
    "00b80009", "0000000000",  # AISpecStopTrigger: null
    "00ba0057", "0001", "01",  # InventoryParameterSpec 1, EPCglobal C1G2
    "00de0028", "0001",  # AntennaConfiguration: antenna 1
    "00e0000a", "0001", "0001", "0005",  # RFTransmitter: hop table 1, channel 1, power 5
    "014a0018", "00",  # C1G2InventoryCommand, not state-aware
    "014f0008", "03ea", "0000",  # C1G2RFControl: mode 1002, Tari 0
    "0150000b", "80", "0010", "00000000",  # C1G2SingulationControl: session 2, population 16
    "00de0028", "0003",  # AntennaConfiguration: antenna 3
    "00e0000a", "0001", "0001", "0051",  # RFTransmitter: power index 81
    "014a0018", "00", "014f0008", "03ea", "0000", "0150000b", "80", "0010", "00000000",
    "00ed0012", "01", "0000", "00ee000b", "9580", "015c000500",  # ROReportSpec
)  # fmt: skip


def test_add_rospec_is_decoded_into_per_antenna_settings():
    spec = m.decode_add_rospec(ADD_ROSPEC[m.HEADER.size :])
    assert (spec.rospec_id, spec.antennas) == (1, (1, 3))
    assert spec.settings == (
        m.AntennaSettings(1, tx_power_index=5, session=2, tag_population=16, mode_index=1002),
        m.AntennaSettings(3, tx_power_index=81, session=2, tag_population=16, mode_index=1002),
    )
    with pytest.raises(ValueError, match="not a TLV parameter"):
        m.decode_add_rospec(ADD_ROSPEC[m.HEADER.size : -3])


def _config(antennas: list[int]) -> LLRPReaderConfig:
    return LLRPReaderConfig(
        {
            "antennas": antennas,
            "report_every_n_tags": 1,
            "tag_content_selector": {
                "EnableAntennaID": True,
                "EnablePeakRSSI": True,
                "EnableFirstSeenTimestamp": True,
                "EnableLastSeenTimestamp": True,
                "EnableTagSeenCount": True,
            },
        }
    )


def test_sllurp_connects_configures_and_receives_tag_reports():
    async def scenario():
        async with FakeLlrpReader() as fake:
            loop = asyncio.get_running_loop()
            got: asyncio.Queue[dict] = asyncio.Queue()
            client = LLRPReaderClient("127.0.0.1", fake.port, _config([1, 2]))
            # sllurp calls back on its own thread: hand each tag to the loop, as the source does
            client.add_tag_report_callback(
                lambda _reader, tags: [loop.call_soon_threadsafe(got.put_nowait, t) for t in tags]
            )
            await asyncio.to_thread(client.connect)
            try:
                await fake.wait_inventorying(5)
                other = m.TagObservation(EPC[:-1] + b"\x01", 1, -70, 5, 6)
                assert fake.report([TAG, other])
                tags = [await asyncio.wait_for(got.get(), 5) for _ in range(2)]
            finally:
                await asyncio.to_thread(client.disconnect, 5)
            return tags, dict(fake.stats), client.llrp.capabilities

    tags, stats, caps = asyncio.run(scenario())
    assert tags[0]["EPC-96"] == EPC.hex().encode()
    assert (tags[0]["AntennaID"], tags[0]["PeakRSSI"], tags[0]["TagSeenCount"]) == (2, -52, 17)
    assert tags[1]["EPC-96"].endswith(b"01") and tags[1]["AntennaID"] == 1
    assert caps["GeneralDeviceCapabilities"]["MaxNumberOfAntennaSupported"] == 4
    for step in ("GET_READER_CAPABILITIES", "SET_READER_CONFIG", "ADD_ROSPEC", "ENABLE_ROSPEC"):
        assert stats[step] == 1, step
    assert stats["DELETE_ROSPEC"] >= 1  # reset on connect (and on a polite disconnect)


def _read_message(sock: socket.socket) -> tuple[m.Header, bytes]:
    data = b""
    while len(data) < m.HEADER.size:
        data += sock.recv(m.HEADER.size - len(data))
    header = m.decode_header(data)
    while len(data) < header.length:
        data += sock.recv(header.length - len(data))
    return header, data


def test_a_second_client_is_refused_and_keepalives_are_sent():
    async def scenario():
        async with FakeLlrpReader(keepalive_s=0.05) as fake:

            def talk():
                with socket.create_connection(("127.0.0.1", fake.port)) as first:
                    _, hello = _read_message(first)
                    with socket.create_connection(("127.0.0.1", fake.port)) as second:
                        _, refused = _read_message(second)
                    header, _ = _read_message(first)
                    first.sendall(m.message(m.KEEPALIVE_ACK, header.msg_id))
                    first.sendall(m.message(999, 42))  # not an LLRP message we know
                    while True:
                        header, error = _read_message(first)
                        if header.msg_type == m.ERROR_MESSAGE:
                            return hello, refused, header, error

            result = await asyncio.to_thread(talk)
            return result, dict(fake.stats)

    (hello, refused, _keepalive, error), stats = asyncio.run(scenario())
    assert _sllurp(hello)["ReaderEventNotificationData"]["ConnectionAttemptEvent"]["Status"] == (
        "Success"
    )
    status = struct.unpack_from("!H", refused, 10 + 4 + 12 + 4)[0]  # ConnectionAttemptEvent
    assert status == REFUSED_ALREADY_CONNECTED
    refusal = _sllurp(refused)["ReaderEventNotificationData"]["ConnectionAttemptEvent"]
    assert refusal["Status"] == "Failed (a Client initiated connection already exists)"
    assert _sllurp(error)["LLRPStatus"]["StatusCode"] == "UnsupportedMessage"
    assert stats["refused_connections"] == 1 and stats["keepalives"] >= 1
    assert stats["keepalive_acks"] == 1


# --- the RFID source: sllurp against the fake reader, through smoothing, to ScanEvents ---

SITE = "dc-1"


def _source_config(**overrides) -> RfidLlrpSourceConfig:
    settings = {
        "type": "rfid_llrp",
        "device": "dock-reader-1",
        "host": "127.0.0.1",
        "port": 5084,
        "antennas": [
            {"antenna": 1, "read_point": {"door": "door-1"}},
            {"antenna": 2, "read_point": {"door": "door-1"}},
            {"antenna": 3, "read_point": {"door": "door-2"}},
        ],
        "stage": "receive",
        "smoothing": {"window_s": 1.0, "rssi_floor_dbm": -75},  # roomy for slow CI
        **overrides,
    }
    return RfidLlrpSourceConfig.model_validate(settings)


def _context(states: list[tuple[DeviceState, str]]) -> SourceContext:
    seqs = itertools.count(1)

    async def report(_device: str, state: DeviceState, detail: str) -> None:
        states.append((state, detail))

    return SourceContext(
        site=SITE, gateway="gw-1", next_seq=lambda _d: next(seqs), report_state=report
    )


def test_tag_reads_keep_sllurp_dicts_at_the_border():
    at = datetime(2026, 11, 1, tzinfo=UTC)
    door = ReadPoint(site=SITE, door="door-1")
    tags = [
        {"EPC-96": b"3074257bf7194e4000001a85", "AntennaID": 1, "PeakRSSI": -50, "TagSeenCount": 3},
        {"EPC": b"e2801160600002054cc2096f", "AntennaID": 1},
        {"EPC-96": b"3074257bf7194e4000001a85", "AntennaID": 9},  # antenna not configured
        {"AntennaID": 1},  # no EPC reported
    ]
    reads, dropped = tag_reads(tags, {1: door}, at)
    assert dropped == 2
    assert reads[0] == TagRead("3074257BF7194E4000001A85", door, 1, -50.0, at, count=3)
    assert reads[1] == TagRead("E2801160600002054CC2096F", door, 1, None, at, count=1)


def test_source_config_refuses_unknown_keys_and_duplicate_antennas():
    with pytest.raises(ValidationError, match="power"):
        _source_config(power=30)
    with pytest.raises(ValidationError, match="listed twice"):
        _source_config(antennas=[{"antenna": 1, "read_point": {"door": "d"}}] * 2)


def test_rfid_source_smooths_reads_from_the_fake_reader_into_scan_events():
    epc_a = bytes.fromhex("3074257BF7194E4000001A85")  # SGTIN-96
    epc_b = bytes.fromhex("3174257BF4499602D2000000")  # SSCC-96, cross-read by door-2
    weak = bytes.fromhex("3474257BF40000000000162E")  # GIAI-96, only under the floor

    async def scenario():
        states: list[tuple[DeviceState, str]] = []
        async with FakeLlrpReader() as fake:
            source = RfidLlrpSource(
                _source_config(port=fake.port), _context(states), poll_interval_s=0.05
            )
            events = []

            async def consume():
                async for event in source:
                    events.append(event)

            task = asyncio.create_task(consume())
            await fake.wait_inventorying(10)
            for i in range(5):  # a burst of reports as the pallet passes door-1
                fake.report(
                    [
                        m.TagObservation(epc_a, 1 + i % 2, -45 - i, i, i, 10),
                        m.TagObservation(epc_b, 2, -48, i, i, 4),
                        m.TagObservation(epc_b, 3, -66, i, i, 1),
                        m.TagObservation(weak, 1, -80, i, i, 30),
                    ]
                )
                await asyncio.sleep(0.02)
            for _ in range(100):
                if len(events) >= 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # nothing more should come out of the same dwell
            fake.drop_client()
            for _ in range(100):
                if any(s is DeviceState.OFFLINE for s, _ in states):
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return events, states, source.counters()

    events, states, counters = asyncio.run(scenario())
    by_code = {e.code: e for e in events}
    assert sorted(by_code) == [epc_a.hex().upper(), epc_b.hex().upper()]
    assert len(events) == 2
    a, b = by_code[epc_a.hex().upper()], by_code[epc_b.hex().upper()]
    assert (a.symbology, a.read_count, a.rssi_dbm, a.antenna) == ("sgtin-96", 50, -45.0, 1)
    assert (b.symbology, b.read_count) == ("sscc-96", 20)
    assert a.read_point == b.read_point == ReadPoint(site=SITE, door="door-1")
    assert a.code_kind is CodeKind.EPC and a.stage is Stage.RECEIVE
    assert states[0][0] is DeviceState.ONLINE and "inventorying" in states[0][1]
    assert states[-1][0] is DeviceState.OFFLINE and "reconnecting" in states[-1][1]
    assert counters["reads_below_floor"] == 150
    assert counters["cross_reads_suppressed"] == 1


def test_rfid_source_reports_a_reader_that_is_not_there():
    async def scenario():
        states: list[tuple[DeviceState, str]] = []
        with socket.socket() as s:  # a port with nothing listening
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        source = RfidLlrpSource(_source_config(port=port), _context(states))
        agen = source.__aiter__()
        task = asyncio.create_task(agen.__anext__())
        for _ in range(100):
            if states:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return states

    (state, detail), *_ = asyncio.run(scenario())
    assert state is DeviceState.OFFLINE
    assert "RFID reader dock-reader-1 at 127.0.0.1" in detail and "cannot connect" in detail


def test_a_power_below_the_readers_range_is_reported_not_silently_maxed():
    """sllurp turns a wish below the power table into index 0, i.e. full power: say so."""

    async def scenario():
        states: list[tuple[DeviceState, str]] = []
        async with FakeLlrpReader() as fake:  # its power table: 10 to 30 dBm
            antennas = [
                {"antenna": 1, "read_point": {"door": "door-1"}, "tx_power_dbm": 5.0},
                {"antenna": 2, "read_point": {"door": "door-2"}},
            ]
            config = _source_config(port=fake.port, antennas=antennas, tx_power_dbm=20.0)
            source = RfidLlrpSource(config, _context(states))
            task = asyncio.create_task(anext(aiter(source)))
            for _ in range(200):
                if states:
                    break
                await asyncio.sleep(0.02)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return states, fake.tx_power_dbm()

    states, powers = asyncio.run(scenario())
    assert powers == {1: 30.0, 2: 20.0}  # what sllurp really asked the reader for
    (state, detail), *_ = states
    assert state is DeviceState.DEGRADED
    assert "antenna 1: 5 dBm is below the reader's lowest level 10 dBm" in detail
