"""The demo's waves: the warehouse works one wave after another until the demo stops.

A wave is six orders on two new trips, one per truck (demo_warehouse.py): received, packed
and loaded on the floor (one wrong load refused at door-1), driven out by the fleet
(demo_fleet.py), arrived by the trucks' positions, confirmed delivered, and the trucks back
in the yard, where ingest completes their trips from the positions alone. Then the next
wave starts: order and trip numbers go on counting under the run's stamp (SO-<run>-7...,
T<run>-3...), so a dispatcher watching the live map always has trucks on the road. The
first wave's timing is the single-wave demo's: its six orders are delivered within two
minutes; a wave takes about two and a half minutes, most of it driving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg

from ingest_service.orders.store import Numbering
from tracklane.demo_devices import DemoDevices
from tracklane.demo_fleet import Fleet
from tracklane.demo_warehouse import Floor, Wave, new_run, receive_wave

log = logging.getLogger(__name__)


@dataclass
class WaveRun:
    wave: Wave
    floor: Floor
    fleet: Fleet


class Waves:
    """`await waves.run(stop, devices)` works waves until `stop`; `summary()` afterwards."""

    def __init__(self, database_url: str, numbering: Numbering) -> None:
        self.database_url = database_url
        self.numbering = numbering
        self.runs: list[WaveRun] = []

    async def run(self, stop: asyncio.Event, devices: DemoDevices) -> None:
        run = await new_run(self.database_url)
        while not stop.is_set():
            began = time.monotonic()
            wave = await receive_wave(
                self.database_url, self.numbering, run=run, number=len(self.runs) + 1
            )
            floor = Floor(wave, devices.handles, reader_doors=devices.reader_doors)
            fleet = Fleet(self.database_url, wave.trips, devices.handles)
            self.runs.append(WaveRun(wave, floor, fleet))
            log.info("demo: wave %d: orders %s to %s on trips %s", wave.number, wave.numbers[0],
                     wave.numbers[-1], ", ".join(wave.trips))  # fmt: skip
            done = await asyncio.gather(floor.run(stop), fleet.run(stop), return_exceptions=True)
            for outcome in done:
                if isinstance(outcome, BaseException):
                    raise outcome
            if not fleet.gps:  # no truck to drive (a config without them): one wave is all
                await stop.wait()
            elif not stop.is_set():
                log.info("demo: wave %d took %.0f s: %d delivered, %d of %d trips completed",
                         wave.number, time.monotonic() - began, fleet.delivered,
                         fleet.completed, len(wave.trips))  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """`waves` started; every order the run created by state, their exceptions by kind and
        the run's trips by state; and the same per wave in `by_wave`, with the wrong loads
        its floor attempted (one, once it got that far)."""
        by_wave = []
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for r in self.runs:
                counts = _counts(conn, r.wave.numbers, list(r.wave.trips))
                by_wave.append(counts | {"wrong_loads_attempted": r.floor.wrong_loads_attempted})
        total: dict[str, Counter[str]] = {k: Counter() for k in ("orders", "exceptions", "trips")}
        for w in by_wave:
            for key, counter in total.items():
                counter.update(w[key])
        return {"waves": len(self.runs), **{k: dict(sorted(c.items())) for k, c in total.items()},
                "by_wave": by_wave}  # fmt: skip


def _counts(conn: psycopg.Connection[Any], numbers: list[str], trips: list[str]) -> dict[str, Any]:
    """These orders by state, their exceptions by kind, and these trips by state."""
    states = conn.execute(
        "SELECT state, count(*) FROM orders WHERE number = ANY(%s) GROUP BY state", (numbers,)
    ).fetchall()
    kinds = conn.execute(
        "SELECT e.kind, count(*) FROM exceptions e JOIN orders o ON o.id = e.order_id"
        " WHERE o.number = ANY(%s) GROUP BY e.kind",
        (numbers,),
    ).fetchall()
    trip_states = conn.execute(
        "SELECT state, count(*) FROM trips WHERE id = ANY(%s) GROUP BY state", (trips,)
    ).fetchall()
    return {
        "orders": dict(sorted((s, int(n)) for s, n in states)),
        "exceptions": dict(sorted((k, int(n)) for k, n in kinds)),
        "trips": dict(sorted((s, int(n)) for s, n in trip_states)),
    }
