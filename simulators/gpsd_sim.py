"""gpsd on TCP: the GPS simulator's vehicle, reported as gpsd's JSON protocol.

On connect a client gets VERSION; after `?WATCH={"enable":true,"json":true};` it gets DEVICES
and WATCH, then per epoch a TPV and a SKY (with the HDOP), as `gpsd -N` does for one
receiver. Faults as in `GpsSimulator`: dropouts, jumps, and (instead of a bad checksum) a
line of corrupt JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC
from typing import Any

from .gps import Fault, GpsSimConfig, GpsSimulator
from .nmea_encode import SimFix
from .tcp_server import MAX_CLIENT_BACKLOG

RECEIVER = "/dev/ttyACM0"  # the receiver gpsd claims to serve
VERSION = {
    "class": "VERSION",
    "release": "3.25",
    "rev": "3.25",
    "proto_major": 3,
    "proto_minor": 15,
}


def _line(report: dict[str, Any]) -> bytes:
    return (json.dumps(report, separators=(",", ":")) + "\r\n").encode()


def tpv(fix: SimFix, device: str = RECEIVER) -> dict[str, Any]:
    """gpsd's TPV for a fix: mode 3, status 1 (GPS), metres and metres per second."""
    when = fix.time.astimezone(UTC)
    return {
        "class": "TPV",
        "device": device,
        "status": 1,
        "mode": 3,
        "time": f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z",
        "lat": round(fix.lat, 9),
        "lon": round(fix.lon, 9),
        "altMSL": fix.altitude_m,
        "track": round(fix.heading_deg % 360, 4),
        "speed": round(fix.speed_mps, 3),
    }


def sky(fix: SimFix, device: str = RECEIVER) -> dict[str, Any]:
    """gpsd's SKY for a fix, without the satellite list: what the gateway reads of it."""
    return {
        "class": "SKY",
        "device": device,
        "hdop": fix.hdop,
        "uSat": fix.satellites,
        "nSat": fix.satellites + 3,
    }


class _GpsdServer:
    """Like `LineServer`, but a client must WATCH before it gets reports, as with gpsd."""

    def __init__(self, host: str, port: int, name: str, device: str) -> None:
        self.host, self.requested_port, self.name, self.device = host, port, name, device
        self.port: int | None = None
        self.commands: list[str] = []  # what clients sent, for tests
        self._server: asyncio.Server | None = None
        self._watchers: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.StreamWriter] = set()
        self._watching = asyncio.Condition()
        self._handlers: set[asyncio.Task[None]] = set()  # one per connected client

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def wait_for_client(self, timeout_s: float | None = 10.0) -> None:
        """Return once a client is watching."""
        async with asyncio.timeout(timeout_s), self._watching:
            await self._watching.wait_for(lambda: bool(self._watchers))

    def send(self, data: bytes) -> int:
        """Write to every watching client; one that stopped reading is dropped."""
        for writer in list(self._watchers):
            if writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_CLIENT_BACKLOG:
                self._watchers.discard(writer)
                self._clients.discard(writer)
                writer.transport.abort()
            else:
                writer.write(data)
        return len(self._watchers)

    def drop_clients(self) -> int:
        dropped = len(self._clients)
        for writer in list(self._clients):
            writer.transport.abort()
        self._clients.clear()
        self._watchers.clear()
        return dropped

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_clients()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        # Let the handlers see the abort and end, rather than be cancelled by the loop's
        # shutdown (which asyncio logs as an error), as LineServer does.
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._clients.add(writer)
        writer.write(_line(VERSION))
        try:
            while line := await reader.readline():
                command = line.decode("ascii", errors="replace").strip()
                self.commands.append(command)
                if command.startswith("?WATCH="):
                    await self._watch(writer, command)
        except OSError:
            pass
        finally:
            self._clients.discard(writer)
            self._watchers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _watch(self, writer: asyncio.StreamWriter, command: str) -> None:
        try:
            watch = json.loads(command.removeprefix("?WATCH=").rstrip(";"))
        except ValueError:
            writer.write(_line({"class": "ERROR", "message": f"Invalid WATCH: {command}"}))
            return
        device = {"class": "DEVICE", "path": self.device, "driver": "u-blox", "bps": 9600}
        writer.write(_line({"class": "DEVICES", "devices": [device]}))
        writer.write(_line({"class": "WATCH", **watch}))
        if watch.get("enable", True) and watch.get("device", self.device) == self.device:
            async with self._watching:
                self._watchers.add(writer)
                self._watching.notify_all()


class GpsdSimulator(GpsSimulator):
    """`async with GpsdSimulator(GpsSimConfig(rate_hz=5)) as gpsd:`; connect to gpsd.port."""

    name = "gpsd simulator"

    def __init__(self, config: GpsSimConfig | None = None, device: str = RECEIVER) -> None:
        super().__init__(config)
        self.device = device
        self.server = _GpsdServer(self.config.host, self.config.port, self.name, device)

    def _encode(self, fix: SimFix, fault: Fault | None) -> bytes:
        lines = [_line(tpv(fix, self.device)), _line(sky(fix, self.device))]
        if fault == "corrupt":
            lines[0] = lines[0][: self._faults_rng.randrange(2, len(lines[0]) - 2)] + b"\r\n"
        return b"".join(lines)
