"""A gateway's configuration: which site it is, where it publishes, which devices it reads.

One TOML file per gateway lives in `firmware_configs/`. Unknown keys are an error, so a typo
("prot = 5001") fails at load time instead of being silently ignored. A source may name a
`profile` (`profiles/readers/<name>.toml` or `profiles/scanners/<name>.toml` next to the
gateway file): its settings are the defaults the source's own keys override (profiles.py).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from event_contract import MAX_EVENTS_PER_BATCH, DoorOrStation, Name, Stage
from mqtt_client import parse_mqtt_url

if TYPE_CHECKING:  # re-exported for type checkers; at run time by __getattr__ at the end
    from .profiles import ReaderProfile as ReaderProfile
    from .profiles import ScannerProfile as ScannerProfile
    from .profiles import load_profile as load_profile
    from .profiles import resolve_profiles as resolve_profiles

Host = Annotated[str, Field(min_length=1, max_length=253)]
# Port 0 ("any free port") means nothing to a client: a config names the device's real port.
Port = Annotated[int, Field(ge=1, le=65535)]
Baudrate = Annotated[int, Field(gt=0, le=4_000_000)]
TxPowerDbm = Annotated[float, Field(ge=0, le=40)]
AntennaId = Annotated[int, Field(ge=1, le=65535)]
Session = Annotated[int, Field(ge=0, le=3)]
TagPopulation = Annotated[int, Field(ge=1, le=65535)]


class GatewayConfigError(ValueError):
    """A gateway config file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublishConfig(_Strict):
    batch_max_events: int = Field(default=200, gt=0, le=MAX_EVENTS_PER_BATCH)
    linger_ms: int = Field(default=100, gt=0, le=60_000)


class OutboxConfig(_Strict):
    """The durable queue between the devices and the broker (see edge_agent/outbox.py)."""

    # None keeps the queue in memory: fine for the demo and tests, lost on a crash.
    path: Path | None = None
    max_events: int | None = Field(default=1_000_000, gt=0)
    max_bytes: int | None = Field(default=None, gt=0)
    overflow: Literal["drop_oldest", "refuse_new"] = "drop_oldest"
    # "normal": a power loss costs at most fsync_window_ms of events; "full": nothing, slower.
    sync: Literal["normal", "full"] = "normal"
    fsync_window_ms: int = Field(default=1000, ge=0, le=600_000)


class HealthConfig(_Strict):
    """The gateway's retained status on `tracklane/state/v1/{site}/{gateway}`."""

    status_interval_s: float = Field(default=30.0, gt=0, le=3600)


_OUTPUT_NAME = r"^[a-z][a-z0-9_]{0,63}$"


class FeedbackConfig(_Strict):
    """How verdicts on scans are shown at the dock (see edge_agent/feedback.py)."""

    # Each name is a module in edge_agent/feedback_outputs/; "console" is built in.
    outputs: list[Annotated[str, Field(pattern=_OUTPUT_NAME)]] = ["console"]
    # Per-output settings, e.g. [feedback.options.stack_light] port = "/dev/ttyUSB1".
    options: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _outputs_exist(self) -> FeedbackConfig:
        # Imported here: the registry is plugin modules, and config must not import them.
        from .feedback import known_outputs

        known = known_outputs()
        for name in [*self.outputs, *self.options]:
            if name not in known:
                raise ValueError(
                    f"unknown feedback output {name!r}; available: {', '.join(known)} "
                    f"(a new one is a module edge_agent/feedback_outputs/{name}.py)"
                )
        return self


class ReadPointConfig(DoorOrStation):
    """Where a fixed scanner stands; the site comes from the gateway."""


class NmeaTcpSourceConfig(_Strict):
    """A GNSS receiver (or gpsd-style relay) streaming NMEA 0183 over TCP."""

    type: Literal["nmea_tcp"]
    device: Name
    host: Host
    port: Port


class NmeaSerialSourceConfig(_Strict):
    """A GNSS receiver on a serial port (USB or RS-232), or a pyserial URL (socket://...)."""

    type: Literal["nmea_serial"]
    device: Name
    port_url: str = Field(min_length=1, max_length=500)  # /dev/ttyACM0, socket://host:port
    baudrate: Baudrate = 4800  # NMEA 0183's standard rate


GPSD_PORT = 2947


class GpsdSourceConfig(_Strict):
    """gpsd's JSON stream (`?WATCH={"json":true}`): gpsd owns the receiver, we read its TPVs."""

    type: Literal["gpsd"]
    device: Name
    host: Host = "127.0.0.1"
    port: Port = GPSD_PORT
    # Only this receiver's reports when gpsd serves several (its "device", e.g. /dev/ttyUSB0).
    gpsd_device: str | None = Field(default=None, min_length=1, max_length=500)


class ScannerTcpSourceConfig(_Strict):
    """A fixed barcode scanner in TCP server mode, one decoded code per line."""

    type: Literal["scanner_tcp"]
    device: Name
    host: Host
    port: Port
    read_point: ReadPointConfig
    stage: Stage | None = None
    profile: Name | None = None  # the scanner profile it was resolved with, if any


LLRP_PORT = 5084


class RfidAntennaConfig(_Strict):
    """One antenna of a reader and the dock door or station it covers."""

    antenna: AntennaId
    read_point: ReadPointConfig
    tx_power_dbm: TxPowerDbm | None = None  # None: the reader's tx_power_dbm


class RfidSmoothingConfig(_Strict):
    window_s: float = Field(default=2.0, gt=0, le=3600)
    rssi_floor_dbm: float | None = Field(default=None, ge=-150, le=50)
    min_reads: int = Field(default=1, ge=1)
    max_dwell_s: float | None = Field(default=None, gt=0)


class RfidLlrpSourceConfig(_Strict):
    """A fixed UHF RFID reader spoken to over LLRP (port 5084)."""

    type: Literal["rfid_llrp"]
    device: Name
    host: Host
    port: Port = LLRP_PORT
    antennas: list[RfidAntennaConfig] = Field(min_length=1)
    tx_power_dbm: TxPowerDbm | None = None  # None: the reader's maximum
    session: Session = 2
    mode_identifier: int | None = Field(default=None, ge=0)
    tag_population: TagPopulation = 4
    report_timeout_ms: int = Field(default=200, ge=0)
    stage: Stage | None = None
    smoothing: RfidSmoothingConfig = RfidSmoothingConfig()
    configure_timeout_s: float = Field(default=10.0, gt=0)
    profile: Name | None = None  # the reader profile it was resolved with, if any

    @model_validator(mode="after")
    def _antennas_unique(self) -> RfidLlrpSourceConfig:
        ids = [a.antenna for a in self.antennas]
        if len(ids) != len(set(ids)):
            raise ValueError(f"reader {self.device}: an antenna is listed twice in {ids}")
        return self


class ScannerSerialSourceConfig(_Strict):
    """A barcode scanner on a serial port (USB-serial, RS-232) or a pyserial URL."""

    type: Literal["scanner_serial"]
    device: Name
    port_url: str = Field(min_length=1, max_length=500)  # /dev/ttyUSB0, socket://host:port
    baudrate: Baudrate = 9600
    read_point: ReadPointConfig
    stage: Stage | None = None
    profile: Name | None = None  # the scanner profile it was resolved with, if any


SourceConfig = Annotated[
    NmeaTcpSourceConfig
    | NmeaSerialSourceConfig
    | GpsdSourceConfig
    | ScannerTcpSourceConfig
    | ScannerSerialSourceConfig
    | RfidLlrpSourceConfig,
    Field(discriminator="type"),
]


class GatewayConfig(_Strict):
    site: Name
    gateway: Name
    mqtt_url: str | None = None
    publish: PublishConfig = PublishConfig()
    outbox: OutboxConfig = OutboxConfig()
    health: HealthConfig = HealthConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    sources: list[SourceConfig] = Field(min_length=1)

    @field_validator("mqtt_url")
    @classmethod
    def _url_parses(cls, url: str | None) -> str | None:
        if url is not None:
            parse_mqtt_url(url)  # raises ValueError with a message that names the URL
        return url

    @model_validator(mode="after")
    def _devices_unique(self) -> GatewayConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.device in seen:
                # Two sources sharing a name would interleave one seq counter and one status.
                raise ValueError(f"device {source.device!r} is configured twice")
            seen.add(source.device)
        return self

    def source(self, device: str) -> SourceConfig:
        for source in self.sources:
            if source.device == device:
                return source
        raise KeyError(f"gateway {self.gateway}: no source named {device!r}")

    def with_endpoints(self, endpoints: Mapping[str, tuple[str, int]]) -> GatewayConfig:
        """A copy with some devices' host and port replaced, e.g. by simulators' bound ports."""
        known = {s.device for s in self.sources}
        unknown = sorted(set(endpoints) - known)
        if unknown:
            raise KeyError(
                f"gateway {self.gateway}: no source named {', '.join(unknown)}; "
                f"configured devices are {', '.join(sorted(known))}"
            )
        sources = []
        for source in self.sources:
            if source.device in endpoints:
                host, port = endpoints[source.device]
                data = source.model_dump() | {"host": host, "port": port}
                # Validate again so a bad override fails here, not at connect time.
                try:
                    source = type(source).model_validate(data)
                except ValidationError as err:
                    raise GatewayConfigError(
                        f"gateway {self.gateway}: {source.device} at {host}:{port}: {_explain(err)}"
                    ) from None
            sources.append(source)
        return self.model_copy(update={"sources": sources})


_SOURCE_TYPES = frozenset(
    ("nmea_tcp", "nmea_serial", "gpsd", "scanner_tcp", "scanner_serial", "rfid_llrp")
)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i and isinstance(loc[i - 1], int) and part in _SOURCE_TYPES:
            out += f" ({part})"  # pydantic's union tag: "sources[0] (scanner_tcp).port"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def _explain(err: ValidationError) -> str:
    lines = []
    for item in err.errors(include_url=False):
        loc = item["loc"]
        if item["type"] == "extra_forbidden":
            lines.append(f"{_where(loc[:-1])}: unknown key {loc[-1]!r}")
        elif item["type"] == "missing":
            lines.append(f"{_where(loc[:-1])}: missing key {loc[-1]!r}")
        else:
            got = f" (got {item['input']!r})" if not isinstance(item["input"], dict | list) else ""
            lines.append(f"{_where(loc)}: {item['msg']}{got}")
    return "\n  ".join(lines)


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise GatewayConfigError(f"{path}: cannot read {what}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise GatewayConfigError(f"{path}: not valid TOML: {err}") from None


def parse_gateway_config(
    data: Mapping[str, Any], *, origin: str = "<config>", profiles_dir: Path | None = None
) -> GatewayConfig:
    """Validate an already-parsed config; errors name `origin` and every bad key."""
    from .profiles import resolve_profiles  # here: profiles.py builds on this module's types

    data = resolve_profiles(data, origin=origin, profiles_dir=profiles_dir)
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as err:
        raise GatewayConfigError(f"{origin}: invalid gateway config:\n  {_explain(err)}") from None


def load_gateway_config(path: str | Path, *, profiles_dir: Path | None = None) -> GatewayConfig:
    """Read and validate one gateway's TOML file; profiles come from `profiles/` beside it."""
    path = Path(path)
    data = _read_toml(path, "gateway config")
    folder = path.parent / "profiles" if profiles_dir is None else profiles_dir
    return parse_gateway_config(data, origin=str(path), profiles_dir=folder)


_PROFILE_NAMES = ("ReaderProfile", "ScannerProfile", "load_profile", "resolve_profiles")


def __getattr__(name: str) -> Any:
    """The profile names, still importable from here; they live in profiles.py."""
    if name in _PROFILE_NAMES:
        from . import profiles

        return getattr(profiles, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
