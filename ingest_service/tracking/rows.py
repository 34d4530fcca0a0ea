"""What tracking reads and changes: new positions, vehicles, trips and their stops."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from geofence.eta import Eta, Route, SpeedState


@dataclass(frozen=True, slots=True)
class NewPosition:
    """A position the writer has just inserted (not a duplicate): the columns tracking needs."""

    event_id: UUID
    time: datetime
    site: str
    gateway: str
    device: str
    lat: float
    lon: float
    speed_mps: float | None
    heading_deg: float | None
    hdop: float | None

    @property
    def tracker(self) -> tuple[str, str, str]:
        return self.site, self.gateway, self.device

    @property
    def actor(self) -> str:
        return f"tracker:{self.site}/{self.gateway}/{self.device}"

    @property
    def time_s(self) -> float:
        return self.time.timestamp()


@dataclass
class VehicleRow:
    """A vehicle_state row, locked for the transaction."""

    id: str
    last_fix_at: datetime | None
    speed: SpeedState
    last: NewPosition | None = None  # the newest fix of this batch, if newer than last_fix_at


@dataclass
class StopRow:
    trip_id: str
    seq: int
    fence_id: int
    state: str  # pending, arriving, arrived, done
    arrived_at: datetime | None = None
    eta: Eta | None = None  # the newest ETA of this batch
    eta_evidence: UUID | None = None  # the fix it was computed from
    changed: bool = False


@dataclass
class TripRow:
    id: str
    vehicle_id: str
    state: str  # loading or departed as loaded; departed or completed by this batch
    departed_at: datetime | None
    origin_fence_id: int | None
    route: Route | None
    stops: list[StopRow] = field(default_factory=list)
    changed: bool = False  # departed or completed by this batch
    completed_at: datetime | None = None  # set when this batch completed it

    def next_stop(self) -> StopRow | None:
        """The first stop (by seq) not yet reached: the one the vehicle is heading for."""
        return next((s for s in self.stops if s.state in ("pending", "arriving")), None)


@dataclass(frozen=True, slots=True)
class Intent:
    """A consequence for orders, decided from positions, applied under the orders' locks.

    `trigger` is orders.lifecycle.Trigger's value: departed, approaching or arrived."""

    trigger: str
    trip_id: str
    seq: int | None  # the stop, for approaching and arrived
    at: datetime
    evidence: UUID
    actor: str
    detail: dict[str, object] = field(default_factory=dict)


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
