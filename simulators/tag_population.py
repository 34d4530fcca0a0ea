"""Scripted tag populations: tagged pallets and cases passing through dock doors. No I/O.

Doors stand in a row, door i (from 0) covered by antenna i + 1. Each pass is one tag carried
through its door: for `pass_s` the door's antenna reads it about `read_rate_hz` times a
second with RSSI rising from the field's edge to its peak mid-door and falling again; the
neighbouring doors' antennas sometimes read it too, `cross_read_db` weaker; some reads are
missed and every RSSI jitters. Stray tags elsewhere in the building are read now and then,
always below `noise_below_dbm`. Everything follows from the seed, and a scenario can say
what a perfect gateway should report (`expected`), so a test can compare.

Time is seconds since the scenario began. Scenarios are lazy: `reads(t0, t1)` only
generates what falls in that span, so a simulator can play one for ever.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

# GS1's example company prefix 0614141: 7 digits, so partition 5 and 24 bits in both schemes.
_PREFIX = (5 << 82) | (614141 << 58)


def sgtin96(item_reference: int, serial: int) -> str:
    """SGTIN-96 hex for GS1's example prefix (filter 1: point-of-sale item), as in the TDS."""
    value = (0x30 << 88) | (1 << 85) | _PREFIX | (item_reference % (1 << 20)) << 38
    return f"{value | serial % (1 << 38):024X}"


def sscc96(serial_reference: int) -> str:
    """SSCC-96 hex for GS1's example prefix (filter 2: full case); the last 24 bits are 0."""
    value = (0x31 << 88) | (2 << 85) | _PREFIX | (serial_reference % (1 << 34)) << 24
    return f"{value:024X}"


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    doors: int = 2
    tags_per_minute: float = 60.0
    seed: int = 0
    duration_s: float | None = None  # None: passes for ever
    pass_s: float = 1.0  # how long a tag is in its door's field
    read_rate_hz: float = 20.0  # reads per second by the door's antenna
    peak_rssi_dbm: float = -45.0  # mid-door
    edge_rssi_dbm: float = -66.0  # where the field begins and ends
    cross_read_db: float = 15.0  # how much weaker the neighbouring door reads it
    cross_read_chance: float = 0.3  # per read of the door's antenna
    miss_chance: float = 0.1
    jitter_db: float = 1.0  # standard deviation
    noise_per_s: float = 5.0  # stray reads of tags that are passing no door
    noise_below_dbm: float = -76.0  # strays are always weaker than this

    def __post_init__(self) -> None:
        if self.doors < 1 or self.tags_per_minute <= 0 or self.pass_s <= 0:
            raise ValueError("a scenario needs a door, a positive tag rate and pass time")
        if self.read_rate_hz <= 0:
            raise ValueError(f"read_rate_hz must be positive, got {self.read_rate_hz}")

    @property
    def interval_s(self) -> float:
        return 60.0 / self.tags_per_minute


@dataclass(frozen=True, slots=True)
class Pass:
    """Ground truth: a tag carried through a door between `start_s` and `end_s`."""

    epc: str  # 24 hex digits, upper case
    door: int  # from 0; antenna door + 1
    start_s: float
    end_s: float

    @property
    def antenna(self) -> int:
        return self.door + 1


@dataclass(frozen=True, slots=True)
class Read:
    """One singulation of one tag by one antenna."""

    t_s: float
    epc: str
    antenna: int
    rssi_dbm: float


@dataclass(frozen=True, slots=True)
class Observation:
    """A reader's report line: one tag on one antenna over a report interval."""

    epc: str
    antenna: int
    peak_rssi_dbm: int
    first_seen_s: float
    last_seen_s: float
    seen_count: int


def door_name(door: int) -> str:
    return f"door-{door + 1}"


class TagScenario:
    def __init__(self, config: ScenarioConfig | None = None) -> None:
        self.config = config or ScenarioConfig()
        self.carried: list[Pass] = []  # passes scripted from outside, e.g. by the demo

    def carry(self, epc: str, door: int, start_s: float) -> Pass:
        """Script one more pass: the tag `epc` through door `door` (from 0) at `start_s`."""
        if not 0 <= door < self.config.doors:
            raise ValueError(f"door {door} is not one of this scenario's {self.config.doors}")
        p = Pass(epc.upper(), door, start_s, start_s + self.config.pass_s)
        self.carried.append(p)
        return p

    def _rng(self, *key: object) -> random.Random:
        return random.Random(f"{self.config.seed}:{':'.join(map(str, key))}")

    def pass_number(self, k: int) -> Pass:
        """The k-th pass (from 0): its tag, door and times."""
        cfg = self.config
        rng = self._rng("pass", k)
        start = (k + rng.uniform(0.0, 0.5)) * cfg.interval_s
        # Pallets (SSCC) and cases (SGTIN) alternate at random; serials follow k, so unique.
        epc = sscc96(1_000_000 + k) if rng.random() < 0.5 else sgtin96(812345, 1_000 + k)
        return Pass(epc, rng.randrange(cfg.doors), start, start + cfg.pass_s)

    def passes(self, t0: float, t1: float) -> Iterator[Pass]:
        """The passes that overlap [t0, t1), in start order."""
        cfg = self.config
        first = max(0, math.floor((t0 - cfg.pass_s) / cfg.interval_s) - 1)
        for k in range(first, math.ceil(t1 / cfg.interval_s) + 1):
            p = self.pass_number(k)
            if cfg.duration_s is not None and p.end_s > cfg.duration_s:
                return
            if p.end_s >= t0 and p.start_s < t1:
                yield p

    def expected(self, t0: float = 0.0, t1: float | None = None) -> list[tuple[str, str]]:
        """(EPC, door name) for each pass entirely within [t0, t1): what a gateway reports."""
        end = self.config.duration_s if t1 is None else t1
        if end is None:
            raise ValueError("an endless scenario needs t1")
        return [(p.epc, door_name(p.door)) for p in self.passes(t0, end) if p.start_s >= t0]

    def _pass_reads(self, p: Pass) -> list[Read]:
        cfg = self.config
        rng = self._rng("reads", p.epc, p.start_s)
        reads: list[Read] = []
        n = max(1, round(cfg.pass_s * cfg.read_rate_hz))
        for i in range(n):
            x = (i + 0.5) / n  # position through the door, 0..1
            t = p.start_s + x * cfg.pass_s
            rssi = cfg.edge_rssi_dbm + (cfg.peak_rssi_dbm - cfg.edge_rssi_dbm) * math.sin(
                math.pi * x
            )
            if rng.random() >= cfg.miss_chance:
                reads.append(Read(t, p.epc, p.antenna, rssi + rng.gauss(0, cfg.jitter_db)))
            if rng.random() < cfg.cross_read_chance:
                neighbours = [d for d in (p.door - 1, p.door + 1) if 0 <= d < cfg.doors]
                if neighbours:
                    weaker = rssi - cfg.cross_read_db + rng.gauss(0, cfg.jitter_db)
                    reads.append(Read(t, p.epc, rng.choice(neighbours) + 1, weaker))
        return reads

    def _noise(self, second: int) -> list[Read]:
        cfg = self.config
        rng = self._rng("noise", second)
        count = round(cfg.noise_per_s * rng.uniform(0.5, 1.5))
        return [
            Read(
                second + rng.random(),
                f"{rng.getrandbits(96):024X}",
                rng.randrange(cfg.doors) + 1,
                cfg.noise_below_dbm - rng.uniform(0.5, 15.0),
            )
            for _ in range(count)
        ]

    def reads(self, t0: float, t1: float) -> list[Read]:
        """Every read in [t0, t1), in time order."""
        end = t1 if self.config.duration_s is None else min(t1, self.config.duration_s)
        carried = [p for p in self.carried if p.end_s >= t0 and p.start_s < end]
        passes = [*self.passes(t0, end), *carried]
        out = [r for p in passes for r in self._pass_reads(p) if t0 <= r.t_s < end]
        for second in range(max(0, math.floor(t0)), math.ceil(end)):
            out += [r for r in self._noise(second) if t0 <= r.t_s < end]
        return sorted(out, key=lambda r: r.t_s)

    def report(self, t0: float, t1: float) -> list[Observation]:
        """The reads in [t0, t1) as a reader reports them: one line per (EPC, antenna)."""
        lines: dict[tuple[str, int], list[Read]] = {}
        for read in self.reads(t0, t1):
            lines.setdefault((read.epc, read.antenna), []).append(read)
        return [
            Observation(
                epc,
                antenna,
                round(max(r.rssi_dbm for r in seen)),
                seen[0].t_s,
                seen[-1].t_s,
                len(seen),
            )
            for (epc, antenna), seen in lines.items()
        ]
