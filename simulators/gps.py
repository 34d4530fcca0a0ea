"""A GNSS receiver on TCP and on a pty: a vehicle driving a route, as NMEA 0183 RMC + GGA.

The vehicle keeps driving whether or not anyone listens, like a real truck; every client
connected at an epoch receives that epoch's sentences, CRLF-terminated, and so does the pty
(`pty=True`, read `pty_path`) as from a receiver on a serial port.

A script may drive it: `park()` stops the vehicle where it is (fixes keep coming, at speed
0), `drive()` sets it going again, `await drive_to(distance_m)` drives on and parks
on reaching that distance along the route (`odometer_m`), and `follow(route)` gives it
another route to drive from its start (e.g. the way back: `walker.back_to_start`).

Faults, drawn from `seed` so a test can repeat them: dropouts (epochs sent nowhere, as under
a bridge), corrupt checksums, and position jumps (a multipath fix far off the route).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from .nmea_encode import SimFix, encode_epoch
from .pty_device import PtyDevice
from .routes import DEMO_ROUTE, LatLon, RouteWalker, offset_m
from .tcp_server import TcpDevice

Fault = Literal["dropout", "corrupt", "jump"]


@dataclass(frozen=True, slots=True)
class GpsSimConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port; read GpsSimulator.port after start()
    route: Sequence[LatLon] = DEMO_ROUTE
    speed_mps: float = 8.0
    rate_hz: float = 1.0
    noise_m: float = 0.0  # standard deviation of the position error, per axis
    seed: int = 0
    talker: str = "GP"
    satellites: int = 9
    hdop: float = 0.9
    altitude_m: float = 5.0
    pty: bool = False  # also write to a pseudo-terminal, as a receiver on a serial port
    pty_link: str | None = None  # a stable path (symlink) to the pty
    # Per-epoch chances of each fault; a dropout lasts `dropout_epochs` epochs.
    dropout_rate: float = 0.0
    dropout_epochs: int = 3
    corrupt_rate: float = 0.0  # one sentence of the epoch gets a wrong checksum
    jump_rate: float = 0.0
    jump_m: float = 5_000.0  # how far off the route a jumped fix lands

    def __post_init__(self) -> None:
        # NMEA times have centisecond resolution; above 20 Hz epochs could share a time.
        if not 0 < self.rate_hz <= 20:
            raise ValueError(f"rate_hz must be in (0, 20], not {self.rate_hz}")
        if self.speed_mps < 0 or self.noise_m < 0:
            raise ValueError("speed_mps and noise_m must not be negative")
        for name in ("dropout_rate", "corrupt_rate", "jump_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability in [0, 1], not {getattr(self, name)}")
        if self.dropout_epochs < 1:
            raise ValueError("dropout_epochs must be at least 1")


@dataclass(frozen=True, slots=True)
class SentEpoch:
    fix: SimFix  # as reported, a jump included
    fault: Fault | None = None  # None: a good fix the gateway must publish


class GpsSimulator(TcpDevice):
    """`async with GpsSimulator(GpsSimConfig(rate_hz=5)) as gps:` then connect to gps.port
    (or, with `pty=True`, open gps.pty_path). Epochs that reached someone are in `sent`."""

    name = "GPS simulator"

    def __init__(self, config: GpsSimConfig | None = None) -> None:
        self.config = config or GpsSimConfig()
        self.walker = RouteWalker(self.config.route)
        super().__init__(self.config.host, self.config.port)
        self.epochs = 0  # epochs generated
        self.epochs_sent = 0  # epochs that reached at least one client
        self.last_fix: SimFix | None = None
        self.sent: deque[SentEpoch] = deque(maxlen=10_000)  # the latest, for tests
        self.faults: dict[str, int] = {"dropout": 0, "corrupt": 0, "jump": 0}
        self._rng = random.Random(self.config.seed)
        self._faults_rng = random.Random(self.config.seed + 1)  # noise stays as it was
        self._silent = 0  # epochs left in the current dropout
        self.speed_mps = self.config.speed_mps  # now: park() and drive() change it
        self.odometer_m = 0.0  # how far along the route the vehicle has driven
        self._park_at_m: float | None = None
        self._parked = asyncio.Event()
        if self.parked:
            self._parked.set()
        wants_pty = self.config.pty or self.config.pty_link is not None
        self.pty = PtyDevice(self.config.pty_link, self.name) if wants_pty else None

    @property
    def pty_path(self) -> str:
        """The serial port a client opens (the link, if configured)."""
        if self.pty is None:
            raise RuntimeError(f"{self.name}: not serving on a pty; set pty=True")
        return self.pty.path

    async def start(self) -> None:
        if self.pty is not None:
            self.pty.open()
        await super().start()

    async def close(self) -> None:
        await super().close()
        if self.pty is not None:
            await asyncio.to_thread(self.pty.close)

    def _fault(self) -> Fault | None:
        """This epoch's fault, if any; a dropout, once started, lasts its epochs."""
        config, rng = self.config, self._faults_rng
        if self._silent == 0 and config.dropout_rate and rng.random() < config.dropout_rate:
            self._silent = config.dropout_epochs
        if self._silent:
            self._silent -= 1
            return "dropout"
        if config.jump_rate and rng.random() < config.jump_rate:
            return "jump"
        if config.corrupt_rate and rng.random() < config.corrupt_rate:
            return "corrupt"
        return None

    def _jumped(self, fix: SimFix) -> SimFix:
        bearing = self._faults_rng.uniform(0, 2 * math.pi)
        north, east = self.config.jump_m * math.cos(bearing), self.config.jump_m * math.sin(bearing)
        lat, lon = offset_m((fix.lat, fix.lon), north, east)
        return replace(fix, lat=lat, lon=lon)

    def _encode(self, fix: SimFix, fault: Fault | None) -> bytes:
        lines = encode_epoch(fix, self.config.talker)
        if fault == "corrupt":
            i = self._faults_rng.randrange(len(lines))
            good = lines[i][-2:]
            lines[i] = lines[i][:-2] + ("00" if good != "00" else "FF")
        return "".join(f"{line}\r\n" for line in lines).encode("ascii")

    def _emit(self, data: bytes) -> bool:
        delivered = self.server.send(data) > 0
        if self.pty is not None:
            delivered = self.pty.send(data) or delivered
        return delivered

    def _epoch(self, fix: SimFix) -> None:
        """Report one epoch's fix, faults included, to whoever listens."""
        fault = self._fault()
        if fault is not None:
            self.faults[fault] += 1
        if fault == "dropout":
            return
        if fault == "jump":
            fix = self._jumped(fix)
        if self._emit(self._encode(fix, fault)):
            self.epochs_sent += 1
            self.sent.append(SentEpoch(fix, fault))

    def fix_at(self, distance_m: float, when: datetime) -> SimFix:
        """The fix reported after driving `distance_m`, noise included."""
        point, heading = self.walker.at(distance_m)
        if self.config.noise_m:
            point = offset_m(
                point,
                self._rng.gauss(0, self.config.noise_m),
                self._rng.gauss(0, self.config.noise_m),
            )
        return SimFix(
            time=when,
            lat=point[0],
            lon=point[1],
            speed_mps=self.speed_mps,
            heading_deg=heading,
            satellites=self.config.satellites,
            hdop=self.config.hdop,
            altitude_m=self.config.altitude_m,
        )

    @property
    def parked(self) -> bool:
        return self.speed_mps == 0

    def park(self) -> None:
        """Stop where the vehicle is; it keeps reporting fixes, at speed 0."""
        self.speed_mps, self._park_at_m = 0.0, None
        self._parked.set()

    def drive(self, speed_mps: float | None = None, *, until_m: float | None = None) -> None:
        """Drive on at `speed_mps` (default: the configured speed); with `until_m`, park on
        reaching that distance along the route."""
        speed = self.config.speed_mps if speed_mps is None else speed_mps
        if speed < 0:
            raise ValueError(f"{self.name}: speed_mps must not be negative, not {speed}")
        self.speed_mps, self._park_at_m = speed, until_m
        if speed == 0 or (until_m is not None and self.odometer_m >= until_m):
            self.park()
        else:
            self._parked.clear()

    def follow(self, route: Sequence[LatLon], *, loop: bool = True) -> None:
        """Park, and from now on drive `route`, from its first waypoint (the odometer starts
        over at 0). Start it where the vehicle stands, or the next fix jumps there."""
        walker = RouteWalker(route, loop=loop)
        self.park()
        self.walker, self.odometer_m = walker, 0.0

    async def drive_to(self, distance_m: float, speed_mps: float | None = None) -> None:
        """Drive on and park at `distance_m` along the route; returns once parked there."""
        self.drive(speed_mps, until_m=distance_m)
        await self._parked.wait()

    def _advance(self, seconds: float) -> None:
        self.odometer_m += self.speed_mps * seconds
        if self._park_at_m is not None and self.odometer_m >= self._park_at_m:
            self.odometer_m = self._park_at_m
            self.park()

    def _fix_time(self) -> datetime:
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 10_000 * 10_000)
        if self.last_fix is not None and now <= self.last_fix.time:
            now = self.last_fix.time + timedelta(milliseconds=10)  # every epoch its own time
        return now

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1 / self.config.rate_hz
        started = loop.time()
        tick = 0
        while True:
            fix = self.fix_at(self.odometer_m, self._fix_time())
            self.last_fix = fix
            self.epochs += 1
            self._epoch(fix)
            # Pace against the start time, and skip epochs missed while the loop was busy
            # instead of bursting them out late.
            ticks = max(tick + 1, int((loop.time() - started) / period))
            self._advance((ticks - tick) * period)
            tick = ticks
            await asyncio.sleep(max(0.0, started + tick * period - loop.time()))
