"""The events a gateway publishes: frozen, typed, validated on both sides of the broker.

Every event names the device that produced it, carries an `event_id` (a UUIDv7 minted at
the gateway, so a redelivered event is recognisable) and a per-device `seq` that only goes
up, and two clocks: `device_time` (when the device saw it; for a position, the GNSS fix
time) and `received_at` (when the gateway read it from the device).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from uuid6 import uuid7

# A name that is safe as one MQTT topic level and as a database key: no '/', '+', '#'.
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


# Free text a device may send. PostgreSQL text cannot hold NUL, so it is refused here, at the
# contract, where the reason reaches the quarantine instead of a failed transaction.
Text = Annotated[str, AfterValidator(_no_nul)]


def new_event_id() -> UUID:
    """A fresh, time-ordered event id (UUIDv7)."""
    return uuid7()


class Stage(StrEnum):
    """The warehouse step a read point stands for; set by the gateway's read-point config."""

    RECEIVE = "receive"
    PICK = "pick"
    PACK = "pack"
    DISPATCH = "dispatch"


class CodeKind(StrEnum):
    BARCODE = "barcode"
    EPC = "epc"


class DeviceState(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    ERROR = "error"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class DoorOrStation(_Frozen):
    """Exactly one of a dock door or a station (gateway configs reuse this)."""

    door: Name | None = None
    station: Name | None = None

    @model_validator(mode="after")
    def _door_or_station(self) -> DoorOrStation:
        if (self.door is None) == (self.station is None):
            raise ValueError("a read point names exactly one of door or station")
        return self


class ReadPoint(DoorOrStation):
    """Where a scan happened: a site and either a dock door or a station."""

    site: Name


class _Event(_Frozen):
    event_id: UUID
    device: Name
    seq: int = Field(ge=0, le=2**63 - 1, description="per-device, strictly increasing")
    device_time: AwareDatetime
    received_at: AwareDatetime


class ScanEvent(_Event):
    """One package seen: a barcode decoded or an RFID tag read (already smoothed)."""

    type: Literal["scan"] = "scan"
    code: Text = Field(min_length=1, max_length=256, description="barcode data or EPC hex")
    code_kind: CodeKind
    symbology: Text | None = Field(
        default=None, max_length=32, description="gs1-128, ean-13, epc-96"
    )
    antenna: int | None = Field(default=None, ge=0, le=65535)
    rssi_dbm: float | None = Field(default=None, ge=-150, le=50)
    read_count: int = Field(default=1, ge=1, le=2**31 - 1)
    read_point: ReadPoint
    stage: Stage | None = None


class PositionEvent(_Event):
    """One GNSS fix of a tracker; `device_time` is the fix time."""

    type: Literal["position"] = "position"
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    speed_mps: float | None = Field(default=None, ge=0, le=400, allow_inf_nan=False)
    heading_deg: float | None = Field(default=None, ge=0, lt=360, allow_inf_nan=False)
    fix_quality: int = Field(default=1, ge=0, le=9, description="NMEA GGA fix quality")
    hdop: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    satellites: int | None = Field(default=None, ge=0, le=255)
    altitude_m: float | None = Field(default=None, ge=-1000, le=100_000, allow_inf_nan=False)

    @property
    def fix_time(self) -> datetime:
        return self.device_time


class DeviceStatus(_Event):
    """A device's health as its gateway sees it: connected, degraded, gone."""

    type: Literal["status"] = "status"
    state: DeviceState
    detail: Text | None = Field(default=None, max_length=500)
    counters: dict[Name, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict, max_length=64
    )


Event = Annotated[ScanEvent | PositionEvent | DeviceStatus, Field(discriminator="type")]
