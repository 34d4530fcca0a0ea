"""Gateway configs: every shipped file validates, and mistakes fail loudly with a location."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import (
    GatewayConfig,
    GatewayConfigError,
    NmeaTcpSourceConfig,
    RfidLlrpSourceConfig,
    ScannerSerialSourceConfig,
    ScannerTcpSourceConfig,
    load_gateway_config,
    load_profile,
    parse_gateway_config,
)
from edge_agent.sources import SourceContext
from edge_agent.sources.rfid_llrp import RfidLlrpSource, antenna_powers
from event_contract import Stage
from simulators.llrp_reader import FakeLlrpReader

CONFIG_DIR = Path(__file__).resolve().parent.parent / "firmware_configs"
CONFIG_FILES = sorted(CONFIG_DIR.glob("*.toml"))


def test_the_folder_has_configs() -> None:
    names = {p.name for p in CONFIG_FILES}
    assert {"demo-dock-a.toml", "demo-truck-1.toml"} <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_shipped_config_validates(path: Path) -> None:
    config = load_gateway_config(path)
    assert config.sources


def test_demo_configs_say_what_the_demo_needs() -> None:
    dock = load_gateway_config(CONFIG_DIR / "demo-dock-a.toml")
    assert (dock.site, dock.gateway) == ("wh1", "dock-a")
    # The demo's warehouse (tracklane/demo_warehouse.py) drives the first two by name, its
    # inbound shipment (tracklane/demo_inbound.py) the third.
    scanner, pack, receiving = dock.sources
    assert isinstance(scanner, ScannerSerialSourceConfig)
    assert (scanner.device, scanner.read_point.door, scanner.stage) == (
        "scanner-1",
        "door-1",
        Stage.DISPATCH,
    )
    assert isinstance(pack, ScannerTcpSourceConfig)
    assert (pack.device, pack.read_point.station, pack.stage) == ("pack-scanner", "pack-1", "pack")
    assert isinstance(receiving, ScannerTcpSourceConfig)
    assert (receiving.device, receiving.read_point.door, receiving.stage) == (
        "receiving-scanner",
        "door-2",
        Stage.RECEIVE,
    )
    truck = load_gateway_config(CONFIG_DIR / "demo-truck-1.toml")
    assert (truck.site, truck.gateway) == ("wh1", "truck-1")
    (gps,) = truck.sources
    assert isinstance(gps, NmeaTcpSourceConfig) and gps.device == "truck-1-gps"


def test_the_readme_example_is_a_valid_config(tmp_path: Path) -> None:
    readme = (CONFIG_DIR / "README.md").read_text()
    example = re.search(r"```toml\n(.*?)```", readme, re.S)
    assert example, "README.md lost its TOML example"
    path = tmp_path / "example.toml"
    path.write_text(example.group(1))
    config = load_gateway_config(path)
    assert [s.type for s in config.sources] == ["scanner_tcp", "nmea_tcp"]


def minimal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "site": "wh1",
        "gateway": "gw-1",
        "sources": [
            {
                "type": "scanner_tcp",
                "device": "scanner-1",
                "host": "127.0.0.1",
                "port": 5101,
                "read_point": {"station": "pack-3"},
            }
        ],
    }
    data.update(changes)
    return data


def test_defaults() -> None:
    config = parse_gateway_config(minimal())
    assert (config.publish.batch_max_events, config.publish.linger_ms) == (200, 100)
    (source,) = config.sources
    assert isinstance(source, ScannerTcpSourceConfig)
    assert config.mqtt_url is None and source.stage is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('site = "wh1"\ngateway = "gw"\nsite_name = "x"\n', "unknown key 'site_name'"),
        ('site = "wh1"\ngateway = "gw"\n[publish]\nlinger = 5\n', "publish: unknown key 'linger'"),
        (
            'site = "wh1"\ngateway = "gw"\n[[sources]]\ntype = "nmea_tcp"\ndevice = "g"\n'
            'host = "h"\nport = 1\nprot = 2\n',
            "sources[0] (nmea_tcp): unknown key 'prot'",
        ),
    ],
)
def test_unknown_keys_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "typo.toml"
    path.write_text(text)
    with pytest.raises(GatewayConfigError) as err:
        load_gateway_config(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (minimal(site="wh/1"), "site: String should match pattern"),
        (minimal(gateway=""), "gateway: String should have at least 1 character"),
        (minimal(sources=[]), "sources: List should have at least 1 item"),
        (minimal(publish={"batch_max_events": 0}), "publish.batch_max_events"),
        (minimal(publish={"linger_ms": 0}), "publish.linger_ms"),
        (minimal(publish={"batch_max_events": 5001}), "publish.batch_max_events"),
        (minimal(mqtt_url="http://broker"), "scheme must be mqtt://"),
        (minimal(sources=[{"type": "llrp", "device": "r1"}]), "Input tag 'llrp'"),
        (minimal(sources=[{**minimal()["sources"][0], "port": 0}]), "(scanner_tcp).port"),
        (minimal(sources=[{**minimal()["sources"][0], "stage": "ship"}]), "(scanner_tcp).stage"),
        (
            minimal(sources=[{**minimal()["sources"][0], "read_point": {}}]),
            "exactly one of door or station",
        ),
        (
            minimal(
                sources=[{**minimal()["sources"][0], "read_point": {"door": "d1", "station": "s1"}}]
            ),
            "exactly one of door or station",
        ),
        (minimal(sources=[{"type": "nmea_tcp", "device": "g", "host": "h"}]), "missing key 'port'"),
        (
            minimal(sources=minimal()["sources"] * 2),
            "device 'scanner-1' is configured twice",
        ),
    ],
)
def test_bad_values_are_refused_with_a_location(data: dict[str, Any], message: str) -> None:
    with pytest.raises(GatewayConfigError, match=re.escape(message)) as err:
        parse_gateway_config(data, origin="gw-1.toml")
    assert str(err.value).startswith("gw-1.toml: invalid gateway config")


def test_broken_toml_and_missing_files_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('site = "wh1\n')
    with pytest.raises(GatewayConfigError, match=r"broken\.toml: not valid TOML"):
        load_gateway_config(broken)
    with pytest.raises(GatewayConfigError, match=r"absent\.toml: cannot read"):
        load_gateway_config(tmp_path / "absent.toml")


def test_with_endpoints_returns_a_copy_with_new_addresses() -> None:
    config = load_gateway_config(CONFIG_DIR / "demo-truck-1.toml")
    moved = config.with_endpoints({"truck-1-gps": ("127.0.0.1", 40123)})
    gps = moved.source("truck-1-gps")
    assert isinstance(moved, GatewayConfig) and isinstance(gps, NmeaTcpSourceConfig)
    assert (gps.host, gps.port) == ("127.0.0.1", 40123)
    assert config.source("truck-1-gps").port == 5001  # type: ignore[union-attr]  # untouched
    with pytest.raises(KeyError, match="no source named scanner-2"):
        config.with_endpoints({"scanner-2": ("127.0.0.1", 1)})
    with pytest.raises(GatewayConfigError, match=r"truck-1-gps at 127\.0\.0\.1:0"):
        config.with_endpoints({"truck-1-gps": ("127.0.0.1", 0)})


def test_configs_are_frozen() -> None:
    config = parse_gateway_config(minimal())
    with pytest.raises(ValueError, match="frozen"):
        config.site = "other"  # type: ignore[misc]


# --- reader and scanner profiles ---

PROFILE_FILES = sorted(CONFIG_DIR.glob("profiles/*/*.toml"))


def test_the_folder_ships_reader_and_scanner_profiles() -> None:
    kinds = {p.parent.name for p in PROFILE_FILES}
    assert kinds == {"readers", "scanners"}


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_profile_validates(path: Path) -> None:
    profile = load_profile(path)
    assert profile.model_dump(exclude_unset=True), "an empty profile says nothing"


def _gateway(tmp_path: Path, source: str, profiles: dict[str, str]) -> Path:
    for name, text in profiles.items():
        (tmp_path / "profiles" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "profiles" / name).write_text(text)
    path = tmp_path / "gw.toml"
    path.write_text(f'site = "wh1"\ngateway = "gw"\n[[sources]]\n{source}')
    return path


READER = """type = "rfid_llrp"
device = "r1"
host = "192.0.2.1"
profile = "dock"
antennas = [
    { antenna = 1, read_point = { door = "d1" } },
    { antenna = 2, read_point = { door = "d2" }, tx_power_dbm = 20.5 },
    { antenna = 3, read_point = { door = "d3" } },
]
"""
DOCK_PROFILE = """tx_power_dbm = 27.0
session = 1
mode_identifier = 1002
antenna_tx_power_dbm = { 2 = 22.0, 3 = 23.0, 4 = 24.0 }
smoothing = { window_s = 1.5, min_reads = 2 }
"""


def test_a_source_takes_its_profile_and_its_own_keys_win(tmp_path: Path) -> None:
    source_text = READER + "session = 3\nsmoothing = { min_reads = 5 }\n"
    path = _gateway(tmp_path, source_text, {"readers/dock.toml": DOCK_PROFILE})
    (reader,) = load_gateway_config(path).sources
    assert isinstance(reader, RfidLlrpSourceConfig) and reader.profile == "dock"
    assert (reader.tx_power_dbm, reader.session, reader.mode_identifier) == (27.0, 3, 1002)
    assert (reader.smoothing.window_s, reader.smoothing.min_reads) == (1.5, 5)
    # antenna 1: the reader's power; 2: its own beats the profile's; 3: the profile's
    assert [a.tx_power_dbm for a in reader.antennas] == [None, 20.5, 23.0]
    assert antenna_powers(reader) == {1: 27.0, 2: 20.5, 3: 23.0}


def test_profiles_dir_overrides_the_folder_beside_the_file(tmp_path: Path) -> None:
    path = _gateway(tmp_path, READER, {})
    other = tmp_path / "elsewhere"
    (other / "readers").mkdir(parents=True)
    (other / "readers" / "dock.toml").write_text("session = 0\n")
    (reader,) = load_gateway_config(path, profiles_dir=other).sources
    assert isinstance(reader, RfidLlrpSourceConfig) and reader.session == 0


@pytest.mark.parametrize(
    ("source", "profiles", "messages"),
    [
        (READER, {"readers/other.toml": "session = 1\n"},
         ["gw.toml: sources[0]: unknown reader profile 'dock'", "readers/dock.toml",
          "available: other"]),
        (READER, {"readers/dock.toml": "sesion = 1\n"},
         ["readers/dock.toml: invalid reader profile", "unknown key 'sesion'"]),
        (READER, {"readers/dock.toml": "tx_power_dbm = 50\n"},
         ["readers/dock.toml: invalid reader profile", "tx_power_dbm"]),
        (READER.replace('"dock"', '"../dock"'), {}, ["'../dock' is not a profile name"]),
        ('type = "nmea_tcp"\ndevice = "g"\nhost = "h"\nport = 1\nprofile = "x"\n', {},
         ["sources[0]: nmea_tcp sources take no profile"]),
        ('type = "scanner_tcp"\ndevice = "s"\nhost = "h"\nport = 1\nprofile = "usb"\n'
         'read_point = { door = "d1" }\n', {"scanners/usb.toml": "baudrate = 9600\n"},
         ["scanners/usb.toml: sets baudrate", "is a TCP scanner"]),
    ],
)  # fmt: skip
def test_profile_mistakes_name_the_files(
    tmp_path: Path, source: str, profiles: dict[str, str], messages: list[str]
) -> None:
    path = _gateway(tmp_path, source, profiles)
    with pytest.raises(GatewayConfigError) as err:
        load_gateway_config(path)
    for message in messages:
        assert message in str(err.value)


def test_a_profile_without_a_profiles_folder_is_an_error() -> None:
    data = minimal(sources=[{**minimal()["sources"][0], "profile": "usb"}])
    with pytest.raises(GatewayConfigError, match="profile 'usb' needs a profiles folder"):
        parse_gateway_config(data, origin="gw-1.toml")


def test_the_shipped_reader_profile_reaches_the_reader_over_llrp() -> None:
    """example-dock-rfid.toml through sllurp to the fake reader: the ROSpec it receives."""
    config = load_gateway_config(CONFIG_DIR / "example-dock-rfid.toml")

    async def run() -> FakeLlrpReader:
        async with FakeLlrpReader() as fake:
            moved = config.with_endpoints({"dock-reader-1": ("127.0.0.1", fake.port or 0)})
            source = RfidLlrpSource(moved.sources[0], _quiet_context())  # type: ignore[arg-type]
            task = asyncio.create_task(anext(aiter(source)))
            try:
                await fake.wait_inventorying(10)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            return fake

    fake = asyncio.run(run())
    assert fake.rospec is not None and fake.rospec.antennas == (1, 3)
    assert fake.tx_power_dbm() == {1: 27.0, 3: 24.0}  # the profile's, and door-4's own
    for antenna in fake.rospec.settings:
        assert (antenna.session, antenna.tag_population, antenna.mode_index) == (2, 32, 1002)


def _quiet_context() -> SourceContext:
    async def report(*_args: object) -> None:
        pass

    return SourceContext(site="wh1", gateway="dock-b", next_seq=lambda _d: 1, report_state=report)
