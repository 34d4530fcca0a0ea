"""The demo's devices: a simulator behind every source of every demo gateway, on real wires.

Each source type has a starter in `STARTERS` that brings up its simulator and returns the
source pointed at it: a GNSS receiver streaming NMEA over TCP (a fleet truck's receiver
parked in the yard on the truck's route, for demo_fleet.py to drive), a barcode scanner on a
pseudo-terminal (the gateway opens it as a serial port), a fixed RFID reader speaking LLRP
on a free port that plays a scripted tag population (`simulators/tag_population.py`:
tagged pallets and cases through its doors, cross-reads and stray tags included). A new
source type in a demo config needs one starter here and nothing else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from pydantic import ValidationError

from edge_agent.config import GatewayConfig, GatewayConfigError, SourceConfig
from simulators import llrp_messages as m
from simulators.gps import GpsSimConfig, GpsSimulator
from simulators.llrp_reader import FakeLlrpReader
from simulators.scanner import ScannerSimConfig, ScannerSimulator
from simulators.tag_population import ScenarioConfig, TagScenario
from tracklane.demo_fleet import truck_with

# What each source type's events are called in the demo's summary.
KIND_OF_SOURCE = {
    "nmea_tcp": "positions",
    "scanner_serial": "serial_scans",
    "scanner_tcp": "tcp_scans",
    "rfid_llrp": "rfid_scans",
}
# Unknown tags through an RFID reader's doors (the warehouse's own packages are carried
# through by demo_warehouse.py); they show the unmatched list at work.
TAGS_PER_MINUTE = 4.0
# Automatic scans of codes no order has (plain codes, now and then a bad check digit): what
# a scanner left on picks up. Their serials start far above the warehouse's own SSCCs.
NOISE_SCANS_HZ = 0.1
NOISE_FIRST_SERIAL = 900_000_000


def pointed_at(source: SourceConfig, gateway: str, **changes: Any) -> SourceConfig:
    """`source` with `changes` (e.g. port_url) applied and validated again."""
    try:
        return type(source).model_validate(source.model_dump() | changes)
    except ValidationError as err:
        raise GatewayConfigError(f"gateway {gateway}: {source.device}: {err}") from None


Starter = Callable[[Any, "DemoDevices"], Awaitable[SourceConfig]]


async def _nmea_tcp(source: Any, devices: DemoDevices) -> SourceConfig:
    truck = truck_with(source.device)
    if truck is None:  # not one of the fleet's trucks: it drives round the demo loop
        config = GpsSimConfig(rate_hz=2.0, speed_mps=12.0, noise_m=2.0, seed=devices.seed)
    else:  # parked in the yard on its own route until demo_fleet.py drives it
        config = GpsSimConfig(route=truck.route, rate_hz=2.0, speed_mps=0.0, noise_m=2.0,
                              seed=devices.seed)  # fmt: skip
    gps = await devices.stack.enter_async_context(GpsSimulator(config))
    devices.handles[source.device] = gps
    return pointed_at(source, devices.gateway, host=gps.host, port=gps.port)


async def _scanner_tcp(source: Any, devices: DemoDevices) -> SourceConfig:
    # A receiving handheld scans only what is carried in (demo_inbound.py): no noise, which
    # would be reconciled against the door's ASN as unexpected items.
    rate = 0.0 if source.stage == "receive" else NOISE_SCANS_HZ
    config = ScannerSimConfig(rate_hz=rate, seed=devices.seed,
                              first_serial=NOISE_FIRST_SERIAL, bad_check_every=3)  # fmt: skip
    scanner = await devices.stack.enter_async_context(ScannerSimulator(config))
    devices.handles[source.device] = scanner
    return pointed_at(source, devices.gateway, host=scanner.host, port=scanner.port)


async def _scanner_serial(source: Any, devices: DemoDevices) -> SourceConfig:
    config = ScannerSimConfig(rate_hz=NOISE_SCANS_HZ, seed=devices.seed, pty=True,
                              first_serial=NOISE_FIRST_SERIAL, bad_check_every=3)  # fmt: skip
    scanner = await devices.stack.enter_async_context(ScannerSimulator(config))
    devices.handles[source.device] = scanner
    return pointed_at(source, devices.gateway, port_url=scanner.pty_path)


async def _rfid_llrp(source: Any, devices: DemoDevices) -> SourceConfig:
    # The scenario puts door i under antenna i + 1; the config says which door that is.
    antennas = sorted(a.antenna for a in source.antennas)
    if antennas != list(range(1, len(antennas) + 1)):
        raise GatewayConfigError(
            f"gateway {devices.gateway}: {source.device}: the demo's tag scenario covers "
            f"antennas 1 to {len(antennas)}, one door each; the config has {antennas}"
        )
    scenario = TagScenario(
        ScenarioConfig(doors=len(antennas), tags_per_minute=TAGS_PER_MINUTE, seed=devices.seed)
    )
    reader = FakeLlrpReader(
        capabilities=m.Capabilities(antennas=max(4, len(antennas))), scenario=scenario
    )
    await devices.stack.enter_async_context(reader)
    devices.handles[source.device] = reader
    devices.reader_doors.update(
        {a.read_point.door: a.antenna - 1 for a in source.antennas if a.read_point.door}
    )
    return pointed_at(source, devices.gateway, host=reader.host, port=reader.port)


STARTERS: dict[str, Starter] = {
    "nmea_tcp": _nmea_tcp,
    "scanner_tcp": _scanner_tcp,
    "scanner_serial": _scanner_serial,
    "rfid_llrp": _rfid_llrp,
}


class DemoDevices:
    """`async with DemoDevices() as devices: config = await devices.attach(gateway)`;
    leaving the block stops every simulator."""

    def __init__(self) -> None:
        self.stack = AsyncExitStack()
        self.seed = 0
        self.gateway = ""
        self.handles: dict[str, Any] = {}  # device name -> its simulator, to script it
        self.reader_doors: dict[str, int] = {}  # RFID door name -> the scenario's door index

    async def __aenter__(self) -> DemoDevices:
        await self.stack.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stack.__aexit__(*exc)

    async def attach(self, gateway: GatewayConfig) -> GatewayConfig:
        """Start a simulator for each of `gateway`'s sources; the config pointed at them."""
        self.gateway = gateway.gateway
        sources = []
        for source in gateway.sources:
            self.seed += 1
            starter = STARTERS.get(source.type)
            if starter is None:
                raise GatewayConfigError(
                    f"gateway {gateway.gateway}: the demo has no simulator for {source.type} "
                    f"({source.device}); use one of {', '.join(STARTERS)}"
                )
            sources.append(await starter(source, self))
        return gateway.model_copy(update={"sources": sources})


def kinds_of_devices(gateways: list[GatewayConfig]) -> dict[tuple[str, str, str], str]:
    """(site, gateway, device) -> its events' name in the summary (see KIND_OF_SOURCE)."""
    return {
        (g.site, g.gateway, s.device): KIND_OF_SOURCE.get(s.type, s.type)
        for g in gateways
        for s in g.sources
    }
