"""`tracklane simulate reader|scanner|gps|gpsd`: one simulated device in the foreground.

Each runs until Ctrl-C (or SIGTERM) and first prints where to connect, so a gateway, a
vendor tool or `tracklane edge run` can be pointed at it. The devices are the ones the
tests and the demo use (simulators/), speaking the real protocols on real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, help="Run one simulated device until Ctrl-C.")

Host = Annotated[str, typer.Option(help="address to listen on")]
Seed = Annotated[int, typer.Option(help="the same seed gives the same run")]


def _port(host: str, requested: int | None, preferred: int) -> int:
    """`requested` as given; otherwise `preferred` if it is free, else any free port (0)."""
    if requested is not None:
        return requested
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server
        try:
            probe.bind((host, preferred))
        except OSError:
            return 0
    return preferred


def _run(device: Any, started: Callable[[], list[str]], ticker: Callable[[], Awaitable[None]]):
    """Start `device`, print `started()`, run `ticker` until a signal, then close it."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await device.start()
        except OSError as err:
            typer.echo(f"tracklane: cannot listen: {err.strerror or err}", err=True)
            raise typer.Exit(2) from None
        try:
            for line in started():
                typer.echo(line)
            typer.echo("Ctrl-C to stop.")
            tick = asyncio.create_task(ticker())
            await stop.wait()
            tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tick
        finally:
            await device.close()
        typer.echo("stopped.")

    asyncio.run(main())


async def _idle() -> None:
    await asyncio.Event().wait()


@app.command()
def reader(
    host: Host = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="default: 5084 if free, else any")] = None,
    doors: Annotated[int, typer.Option(min=1, max=32, help="one antenna per door")] = 2,
    tags_per_minute: Annotated[float, typer.Option(min=0.1)] = 30.0,
    seed: Seed = 0,
    report_interval: Annotated[float, typer.Option(min=0.01, help="seconds")] = 0.2,
    quiet: Annotated[bool, typer.Option(help="do not print each tag's pass")] = False,
) -> None:
    """A fixed UHF RFID reader on LLRP with tagged goods passing through dock doors."""
    from simulators.llrp_messages import Capabilities
    from simulators.llrp_reader import FakeLlrpReader
    from simulators.tag_population import ScenarioConfig, TagScenario, door_name

    scenario = TagScenario(ScenarioConfig(doors=doors, tags_per_minute=tags_per_minute, seed=seed))
    fake = FakeLlrpReader(
        host,
        _port(host, port, 5084),
        capabilities=Capabilities(antennas=max(4, doors)),
        scenario=scenario,
        report_interval_s=report_interval,
    )

    def started() -> list[str]:
        mapping = ", ".join(f"{n + 1} = {door_name(n)}" for n in range(doors))
        return [
            f"LLRP reader listening on {host}:{fake.port}",
            f"antennas: {mapping}; {tags_per_minute:g} tags a minute, each passing once, "
            "from the first inventory on",
            f'point a gateway at it: type = "rfid_llrp", host = "{host}", port = {fake.port}',
        ]

    async def passes() -> None:
        seen = 0.0
        while True:
            await asyncio.sleep(0.5)
            now = fake.scenario_time()
            for p in scenario.passes(seen, now):
                if p.start_s >= seen and not quiet:
                    typer.echo(f"{p.start_s:8.1f} s  {door_name(p.door)}  {p.epc}")
            seen = now

    _run(fake, started, passes)


@app.command()
def scanner(
    host: Host = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="default: 5101 if free, else any")] = None,
    pty: Annotated[bool, typer.Option("--pty", help="also serve on a pseudo-terminal")] = False,
    rate: Annotated[float, typer.Option(min=0, help="scans a second")] = 1.0,
    seed: Seed = 0,
) -> None:
    """A fixed barcode scanner: one GS1 code per line on TCP (and a pty, as a serial port)."""
    from simulators.scanner import ScannerSimConfig, ScannerSimulator

    sim = ScannerSimulator(
        ScannerSimConfig(host=host, port=_port(host, port, 5101), rate_hz=rate, seed=seed, pty=pty)
    )

    def started() -> list[str]:
        lines = [f'scanner listening on {host}:{sim.port} (type = "scanner_tcp")']
        if pty:
            lines.append(f'serial port: {sim.pty_path} (type = "scanner_serial", port_url)')
        return lines

    _run(sim, started, _idle)


@app.command()
def gps(
    host: Host = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="default: 5001 if free, else any")] = None,
    pty: Annotated[bool, typer.Option("--pty", help="also write to a pseudo-terminal")] = False,
    rate: Annotated[float, typer.Option(min=0.1, max=20, help="fixes a second")] = 1.0,
    speed: Annotated[float, typer.Option(min=0, help="m/s along the demo route")] = 8.0,
    noise: Annotated[float, typer.Option(min=0, help="position error, metres")] = 0.0,
    seed: Seed = 0,
) -> None:
    """A GNSS receiver driving the demo route, as NMEA 0183 on TCP (and a pty)."""
    from simulators.gps import GpsSimConfig, GpsSimulator

    config = GpsSimConfig(
        host=host,
        port=_port(host, port, 5001),
        rate_hz=rate,
        speed_mps=speed,
        noise_m=noise,
        seed=seed,
        pty=pty,
    )
    sim = GpsSimulator(config)

    def started() -> list[str]:
        lines = [f'GPS listening on {host}:{sim.port} (type = "nmea_tcp")']
        if pty:
            lines.append(f'serial port: {sim.pty_path} (type = "nmea_serial", port_url)')
        return lines

    _run(sim, started, _idle)


@app.command()
def gpsd(
    host: Host = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="default: 2947 if free, else any")] = None,
    rate: Annotated[float, typer.Option(min=0.1, max=20, help="fixes a second")] = 1.0,
    speed: Annotated[float, typer.Option(min=0, help="m/s along the demo route")] = 8.0,
    noise: Annotated[float, typer.Option(min=0, help="position error, metres")] = 0.0,
    seed: Seed = 0,
) -> None:
    """gpsd serving one GNSS receiver on the demo route: JSON TPV and SKY reports after ?WATCH."""
    from simulators.gps import GpsSimConfig
    from simulators.gpsd_sim import RECEIVER, GpsdSimulator

    config = GpsSimConfig(
        host=host,
        port=_port(host, port, 2947),
        rate_hz=rate,
        speed_mps=speed,
        noise_m=noise,
        seed=seed,
    )
    sim = GpsdSimulator(config)

    def started() -> list[str]:
        return [
            f'gpsd listening on {host}:{sim.port} (type = "gpsd"), receiver {RECEIVER}',
            f'point a gateway at it: type = "gpsd", host = "{host}", port = {sim.port}',
        ]

    _run(sim, started, _idle)
