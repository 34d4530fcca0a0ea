"""`tracklane bench ...`: benchmarks that print their measured figures, last line JSON."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Benchmarks that print measured figures.")


@app.command("ingest")
def bench_ingest(
    events: Annotated[int, typer.Option(help="synthetic events to publish")] = 200_000,
    batch: Annotated[int, typer.Option(help="events per MQTT message")] = 500,
    rate: Annotated[int, typer.Option(help="events/s for the latency run")] = 10_000,
    workers: Annotated[int, typer.Option(help="ingest processes sharing the subscription")] = 2,
) -> None:
    """Publish synthetic events through the broker into PostgreSQL; print figures."""
    from tracklane.bench.ingest import run_ingest_bench

    logging.basicConfig(level="WARNING")
    result = run_ingest_bench(events=events, batch=batch, rate=rate, workers=workers)
    typer.echo(json.dumps(result))


@app.command("edge")
def bench_edge(
    reads: Annotated[int, typer.Option(help="raw RFID reads to push through")] = 500_000,
    doors: Annotated[int, typer.Option(help="dock doors (two antennas each)")] = 4,
) -> None:
    """Raw RFID reads through smoothing, outbox and publish on one core; print figures."""
    from tracklane.bench.edge import run_edge_bench

    logging.basicConfig(level="WARNING")
    result = run_edge_bench(reads=reads, doors=doors)
    typer.echo(json.dumps(result))


@app.command("dock")
def bench_dock(
    packages: Annotated[
        int, typer.Option(help="packages in the database, each scanned once")
    ] = 40_000,
    paced: Annotated[int, typer.Option(help="loads sent one by one for the latency")] = 500,
    rate: Annotated[int, typer.Option(help="scans per second while measuring latency")] = 100,
    workers: Annotated[int, typer.Option(help="ingest processes sharing the subscription")] = 2,
) -> None:
    """Scans matched to orders per second end to end, and scan-to-verdict latency."""
    from tracklane.bench.dock import run_dock_bench

    logging.basicConfig(level="WARNING")
    result = run_dock_bench(packages=packages, paced=paced, rate=rate, workers=workers)
    typer.echo(json.dumps(result))


@app.command("geofence")
def bench_geofence(
    batch: Annotated[int, typer.Option(help="points per FenceIndex.contains call")] = 10_000,
    latency_batch: Annotated[int, typer.Option(help="points per call for the latency")] = 1_000,
    seconds: Annotated[float, typer.Option(help="measuring time per fence count")] = 2.0,
) -> None:
    """Points tested against 1,000 and 10,000 fences per second on one core; print figures."""
    from tracklane.bench.geofence import run_geofence_bench

    result = run_geofence_bench(batch=batch, latency_batch=latency_batch, seconds=seconds)
    typer.echo(json.dumps(result))


@app.command("live")
def bench_live(
    vehicles: Annotated[int, typer.Option(help="vehicles, each moved once per 1/rate s")] = 10_000,
    clients: Annotated[
        int, typer.Option(help="WebSocket clients, each with its own viewport")
    ] = 100,
    seconds: Annotated[float, typer.Option(help="measuring window after the warm-up")] = 30.0,
    rate: Annotated[float, typer.Option(help="position updates per vehicle per second")] = 1.0,
    warmup: Annotated[float, typer.Option(help="seconds of traffic before measuring")] = 5.0,
    compression: Annotated[
        bool, typer.Option(help="offer permessage-deflate, as browsers do")
    ] = True,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL server for a scratch database, dropped afterwards (default "
            "TRACKLANE_BENCH_DATABASE_URL, else an embedded one)"
        ),
    ] = None,
) -> None:
    """Positions fanned out over /api/v1/live: p99 server-to-client latency and CPU."""
    from tracklane.bench.live import run_live_bench

    logging.basicConfig(level="WARNING")
    result = run_live_bench(
        vehicles=vehicles,
        clients=clients,
        seconds=seconds,
        rate=rate,
        warmup=warmup,
        database_url=database_url,
        compression=compression,
    )
    typer.echo(json.dumps(result))
