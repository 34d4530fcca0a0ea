"""`tracklane nmea ...`: NMEA 0183 logs through the edge agent's GPS parser."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from edge_agent.sources.nmea_parser import Fix

app = typer.Typer(no_args_is_help=True, help="NMEA 0183 GPS logs.")


@app.command("decode")
def decode(
    file: Annotated[Path, typer.Argument(help="NMEA sentences, one a line; '#' starts a comment")],
    now: Annotated[
        datetime | None,
        typer.Option(
            help="UTC time the log was recorded, for the future-time and GPS week rollover "
            "checks; off when not given, as an old log's dates are not wrong"
        ),
    ] = None,
    max_speed: Annotated[float, typer.Option(help="m/s; a faster jump is rejected")] = 100.0,
    max_hdop: Annotated[float, typer.Option(help="a fix with a higher HDOP is rejected")] = 20.0,
) -> None:
    """Print one JSON position per accepted fix, then a JSON line counting the rejects."""
    from edge_agent.sources.nmea_parser import WEEK_ROLLOVER_CORRECTED, NmeaLimits, NmeaParser

    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        typer.echo(
            f"tracklane: NMEA log {file} {what}; give the path of a file of NMEA sentences",
            err=True,
        )
        raise typer.Exit(2)
    parser = NmeaParser(NmeaLimits(max_speed_mps=max_speed, max_hdop=max_hdop), now=now)
    # Logs carry the odd stray byte; it only spoils its own sentence (a checksum reject).
    with file.open(encoding="ascii", errors="replace") as lines:
        for line in lines:
            if line.strip() and not line.startswith("#"):
                for fix in parser.feed(line):
                    _print_fix(fix)
    for fix in parser.flush():
        _print_fix(fix)
    counts = parser.counts()
    summary = {
        "fixes": counts["fixes"],
        "rejected": dict(sorted(parser.rejects.items())),
        WEEK_ROLLOVER_CORRECTED: counts[WEEK_ROLLOVER_CORRECTED],
        "merged": counts["merged"],
        "ignored": counts["ignored"],
    }
    typer.echo(json.dumps(summary))


def _print_fix(fix: Fix) -> None:
    out: dict[str, object] = {"time": fix.time.isoformat(), "lat": fix.lat, "lon": fix.lon}
    if fix.speed_mps is not None:
        out["speed"] = round(fix.speed_mps, 3)
    if fix.heading_deg is not None:
        out["course"] = fix.heading_deg
    typer.echo(json.dumps(out))
