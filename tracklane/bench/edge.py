"""`tracklane bench edge`: raw RFID reads/s through the gateway's pipeline on one core.

A raw read stream is generated first (not timed) and kept compact in arrays: pallets of
tags pass several dock doors, each tag is read tens to hundreds of times per dwell by the
door's two antennas with RSSI noise, and some dwells are also cross-read, weaker, by the
neighbouring door. The stream is cut into reader reports every `report_s` of simulated time.

Then, timed, in one process on one thread (plus paho's network thread): each report is
handed over as sllurp-style tag dicts, turned into TagReads by `rfid_llrp.tag_reads`, fed
through `RfidSmoother` (polled at every report, as the LLRP source does), every decided
scan becomes a ScanEvent by the LLRP source's own `to_event`, is appended to a file-backed
Outbox and published by the real Publisher to a private Mosquitto. The clock stops once the
broker has acknowledged every scan.
"""

from __future__ import annotations

import asyncio
import random
import resource
import shutil
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.config import (
    ReadPointConfig,
    RfidAntennaConfig,
    RfidLlrpSourceConfig,
    RfidSmoothingConfig,
)
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.sources import SourceContext
from edge_agent.sources.rfid_llrp import RfidLlrpSource, tag_reads
from event_contract import DeviceState
from mqtt_client import parse_mqtt_url
from tracklane.embedded import EmbeddedBroker

SITE, GATEWAY, DEVICE = "bench", "bench-gw", "bench-rfid"
_EPC_BASE = int("3074257BF7194E4000000000", 16)  # an SGTIN-96; the serial is the low 38 bits
_START = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


@dataclass(slots=True)
class ReadStream:
    """Raw reads in time order, one entry per read; report k is reads[starts[k]:starts[k+1]]."""

    epcs: list[bytes]  # by dwell: each dwell is a distinct tag pass
    doors: array  # by dwell: the door the tag really passed
    dwell: array  # by read
    antenna: array  # by read
    rssi: array  # by read, dBm
    starts: array  # by report
    report_s: float

    @property
    def reads(self) -> int:
        return len(self.dwell)

    @property
    def dwells(self) -> int:
        return len(set(self.dwell))


def door_name(door: int) -> str:
    return f"door-{door + 1:02d}"


def generate(reads: int, *, doors: int = 4, report_s: float = 0.2, seed: int = 1) -> ReadStream:
    """`reads` raw reads of pallets passing `doors` dock doors (two antennas each)."""
    rng = random.Random(seed)
    epcs: list[bytes] = []
    true_door = array("H")
    # Active dwells: [index, door, start, end, reads wanted, reads emitted, cross-read share]
    pending: list[list[float]] = []
    next_pallet = [rng.uniform(0, 2.0) for _ in range(doors)]
    dwell, antenna, rssi, starts = array("I"), array("B"), array("b"), array("I")
    tick = 0
    while len(dwell) < reads:
        t1 = (tick + 1) * report_s
        for door in range(doors):
            while next_pallet[door] < t1:
                at = next_pallet[door]
                for _ in range(rng.randint(10, 40)):  # tags on the pallet
                    start = at + rng.uniform(0.0, 0.6)
                    length = rng.uniform(1.0, 4.0)
                    wanted = rng.randint(20, 250)
                    cross = rng.uniform(0.05, 0.2) if rng.random() < 0.3 and doors > 1 else 0.0
                    index = len(epcs)
                    epcs.append(f"{_EPC_BASE | index:024X}".encode())
                    true_door.append(door)
                    pending.append([index, door, start, start + length, wanted, 0, cross])
                next_pallet[door] = at + length + rng.uniform(1.0, 6.0)  # gap before the next
        starts.append(len(dwell))
        still = []
        for d in pending:
            index, door, start, end, wanted, done, cross = d
            if start >= t1:
                still.append(d)
                continue
            due = wanted if t1 >= end else int(wanted * (t1 - start) / (end - start))
            for _ in range(int(due - done)):
                if len(dwell) >= reads:
                    break
                if cross and rng.random() < cross:
                    other = door + 1 if door + 1 < doors else door - 1
                    antenna.append(2 * other + 1 + rng.randrange(2))
                    rssi.append(max(-90, min(-30, round(rng.gauss(-71, 4)))))
                else:
                    antenna.append(2 * door + 1 + rng.randrange(2))
                    rssi.append(max(-90, min(-30, round(rng.gauss(-52, 4)))))
                dwell.append(int(index))
            d[5] = due
            if t1 < end:
                still.append(d)
        pending = still
        tick += 1
    return ReadStream(epcs, true_door, dwell, antenna, rssi, starts, report_s)


def source_config(doors: int) -> RfidLlrpSourceConfig:
    return RfidLlrpSourceConfig(
        type="rfid_llrp",
        device=DEVICE,
        host="127.0.0.1",
        antennas=[
            RfidAntennaConfig(
                antenna=2 * door + n, read_point=ReadPointConfig(door=door_name(door))
            )
            for door in range(doors)
            for n in (1, 2)
        ],
        smoothing=RfidSmoothingConfig(window_s=2.0),
    )


async def _pipeline(
    stream: ReadStream, doors: int, broker: EmbeddedBroker, outbox: Outbox
) -> dict[str, float | int]:
    async def report_state(device: str, state: DeviceState, detail: str) -> None:
        return None

    ctx = SourceContext(
        site=SITE, gateway=GATEWAY, next_seq=outbox.next_seq, report_state=report_state
    )
    source = RfidLlrpSource(source_config(doors), ctx)
    smoother, to_event, antennas = source.smoother, source.to_event, source.antennas
    publisher = Publisher(
        site=SITE, gateway=GATEWAY, broker=parse_mqtt_url(broker.url), outbox=outbox
    )
    await publisher.start()
    epcs, dwell, antenna, rssi, starts = (
        stream.epcs,
        stream.dwell,
        stream.antenna,
        stream.rssi,
        stream.starts,
    )
    bounds = [*starts, stream.reads]
    decided: list[tuple[str, str | None]] = []
    scans = 0
    started = time.perf_counter()
    for k in range(len(starts)):
        now = _START + timedelta(seconds=(k + 1) * stream.report_s)
        tags = [
            {
                "EPC-96": epcs[dwell[i]],
                "AntennaID": antenna[i],
                "PeakRSSI": rssi[i],
                "TagSeenCount": 1,
            }
            for i in range(bounds[k], bounds[k + 1])
        ]
        reads, _dropped = tag_reads(tags, antennas, now)
        out = []
        for read in reads:
            out += smoother.feed(read)
        out += smoother.poll(now)
        if out:
            events = [to_event(scan, now) for scan in out]
            decided += [(e.code, e.read_point.door) for e in events]
            scans += len(events)
            publisher.submit(events)
        await asyncio.sleep(0)  # let the publisher batch and take PUBACKs
    now = _START + timedelta(seconds=(len(starts) + 1) * stream.report_s)
    events = [to_event(scan, now) for scan in smoother.flush()]
    if events:
        decided += [(e.code, e.read_point.door) for e in events]
        scans += len(events)
        publisher.submit(events)
    clean = await publisher.close(drain_timeout_s=600)
    elapsed = time.perf_counter() - started
    index_of = {epc.decode(): n for n, epc in enumerate(epcs)}
    wrong_door = sum(door != door_name(stream.doors[index_of[code]]) for code, door in decided)
    return {
        "scans": scans,
        "published": publisher.published,
        "unacknowledged": outbox.depth(),
        "batches": publisher.batches,
        "clean_close": clean,
        "wrong_door": wrong_door,
        "cross_reads_suppressed": smoother.stats["cross_reads_suppressed"],
        "elapsed_s": elapsed,
    }


def run_edge_bench(*, reads: int = 500_000, doors: int = 4) -> dict[str, float | int]:
    stream = generate(reads, doors=doors)
    print(
        f"bench edge: {stream.reads} raw RFID reads of {stream.dwells} tag dwells at {doors}"
        f" doors ({len(stream.starts)} reader reports of {stream.report_s:g} s) through"
        " tag_reads, RfidSmoother, ScanEvent, file Outbox and Publisher to a private"
        " Mosquitto, one process",
        file=sys.stderr,
    )
    workdir = Path(tempfile.mkdtemp(prefix="tracklane-bench-edge-"))
    try:
        with EmbeddedBroker(workdir / "mosquitto") as broker:
            outbox = Outbox(workdir / "outbox.sqlite")
            try:
                figures = asyncio.run(_pipeline(stream, doors, broker, outbox))
            finally:
                outbox.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = float(figures.pop("elapsed_s"))
    scans = int(figures["scans"])
    return {
        "raw_reads": stream.reads,
        "dwells": stream.dwells,
        **figures,
        "elapsed_s": round(elapsed, 2),
        "raw_reads_per_s": round(stream.reads / elapsed),
        "scans_per_s": round(scans / elapsed),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
