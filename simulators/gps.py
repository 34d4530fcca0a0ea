"""A GNSS receiver on TCP: a vehicle driving a route, reported as NMEA 0183 RMC + GGA.

The vehicle keeps driving whether or not anyone listens, like a real truck; every client
connected at an epoch receives that epoch's sentences, CRLF-terminated.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .nmea_encode import SimFix, encode_epoch
from .routes import DEMO_ROUTE, LatLon, RouteWalker, offset_m
from .tcp_server import TcpDevice


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

    def __post_init__(self) -> None:
        # NMEA times have centisecond resolution; above 20 Hz epochs could share a time.
        if not 0 < self.rate_hz <= 20:
            raise ValueError(f"rate_hz must be in (0, 20], not {self.rate_hz}")
        if self.speed_mps < 0 or self.noise_m < 0:
            raise ValueError("speed_mps and noise_m must not be negative")


class GpsSimulator(TcpDevice):
    """`async with GpsSimulator(GpsSimConfig(rate_hz=5)) as gps:` then connect to gps.port."""

    name = "GPS simulator"

    def __init__(self, config: GpsSimConfig | None = None) -> None:
        self.config = config or GpsSimConfig()
        self.walker = RouteWalker(self.config.route)
        super().__init__(self.config.host, self.config.port)
        self.epochs = 0  # epochs generated
        self.epochs_sent = 0  # epochs that reached at least one client
        self.last_fix: SimFix | None = None
        self._rng = random.Random(self.config.seed)

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
            speed_mps=self.config.speed_mps,
            heading_deg=heading,
            satellites=self.config.satellites,
            hdop=self.config.hdop,
            altitude_m=self.config.altitude_m,
        )

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
            fix = self.fix_at(tick * period * self.config.speed_mps, self._fix_time())
            self.last_fix = fix
            self.epochs += 1
            lines = "".join(f"{s}\r\n" for s in encode_epoch(fix, self.config.talker))
            if self.server.send(lines.encode("ascii")):
                self.epochs_sent += 1
            # Pace against the start time, and skip epochs missed while the loop was busy
            # instead of bursting them out late.
            tick = max(tick + 1, int((loop.time() - started) / period))
            await asyncio.sleep(max(0.0, started + tick * period - loop.time()))
