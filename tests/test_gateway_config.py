"""Gateway configs: every shipped file validates, and mistakes fail loudly with a location."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import (
    GatewayConfig,
    GatewayConfigError,
    NmeaTcpSourceConfig,
    ScannerTcpSourceConfig,
    load_gateway_config,
    parse_gateway_config,
)
from event_contract import Stage

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
    (scanner,) = dock.sources
    assert isinstance(scanner, ScannerTcpSourceConfig)
    assert (scanner.device, scanner.read_point.door, scanner.stage) == (
        "scanner-1",
        "door-1",
        Stage.DISPATCH,
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
    config = load_gateway_config(CONFIG_DIR / "demo-dock-a.toml")
    moved = config.with_endpoints({"scanner-1": ("127.0.0.1", 40123)})
    assert (moved.sources[0].host, moved.sources[0].port) == ("127.0.0.1", 40123)
    assert config.sources[0].port == 5101  # the original is untouched
    scanner = moved.source("scanner-1")
    assert isinstance(moved, GatewayConfig) and isinstance(scanner, ScannerTcpSourceConfig)
    assert scanner.read_point.door == "door-1"
    with pytest.raises(KeyError, match="no source named scanner-2"):
        config.with_endpoints({"scanner-2": ("127.0.0.1", 1)})
    with pytest.raises(GatewayConfigError, match=r"scanner-1 at 127\.0\.0\.1:0"):
        config.with_endpoints({"scanner-1": ("127.0.0.1", 0)})


def test_configs_are_frozen() -> None:
    config = parse_gateway_config(minimal())
    with pytest.raises(ValueError, match="frozen"):
        config.site = "other"  # type: ignore[misc]
