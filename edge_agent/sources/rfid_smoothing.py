"""RFID read smoothing: raw tag reads in, at most one scan per (EPC, dwell) out. No I/O.

A tag sitting in a dock door is read hundreds of times a second, by several antennas and
often by the neighbouring door too. The smoother groups the reads of one EPC into a *dwell*:
reads that follow each other with gaps no longer than `window`. Within a dwell it tallies
each read point (read count, peak RSSI, first and last seen). A dwell is decided when the
tag has been quiet for `window`, or, if `max_dwell` is set, once it has lasted that long
(so a pallet parked in a door is reported without waiting for it to leave; the rest of that
dwell is absorbed). At the decision the read points compete (cross-read suppression): the
one with the strongest peak RSSI wins, more reads break a tie, and only the winner emits,
if it reached `min_reads`.

Reads below `rssi_floor_dbm` (or without RSSI when a floor is set) are dropped before they
touch any dwell, so noise neither creates a scan nor keeps a dwell open.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

_NO_RSSI = float("-inf")


@dataclass(frozen=True, slots=True)
class TagRead:
    """One report of one tag: what the reader says, with the antenna mapped to a read point."""

    epc: str
    read_point: Hashable
    antenna: int | None
    rssi_dbm: float | None
    at: datetime
    count: int = 1
    """Reads this report stands for (LLRP's TagSeenCount when the reader aggregates)."""


@dataclass(frozen=True, slots=True)
class SmoothedScan:
    """The decision for one dwell: the winning read point's tally."""

    epc: str
    read_point: Hashable
    antenna: int | None
    """The antenna that saw the peak RSSI."""
    read_count: int
    peak_rssi_dbm: float | None
    first_seen: datetime
    last_seen: datetime
    suppressed: tuple[Hashable, ...] = ()
    """Other read points that saw the tag in the same dwell and lost."""


@dataclass(frozen=True, slots=True)
class SmoothingConfig:
    window: timedelta = timedelta(seconds=2)
    rssi_floor_dbm: float | None = None
    min_reads: int = 1
    max_dwell: timedelta | None = None

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError(f"smoothing window must be positive, got {self.window}")
        if self.min_reads < 1:
            raise ValueError(f"min_reads must be at least 1, got {self.min_reads}")
        if self.max_dwell is not None and self.max_dwell <= timedelta(0):
            raise ValueError(f"max_dwell must be positive, got {self.max_dwell}")


@dataclass(slots=True)
class _Tally:
    read_count: int
    peak: float
    antenna: int | None
    first_seen: datetime
    last_seen: datetime

    def rank(self) -> tuple[float, int, float]:
        # Strongest peak first, then most reads, then whoever saw it first.
        return (self.peak, self.read_count, -self.first_seen.timestamp())


@dataclass(slots=True)
class _Dwell:
    first_seen: datetime
    last_seen: datetime
    decided: bool = False
    tallies: dict[Hashable, _Tally] = field(default_factory=dict)


class RfidSmoother:
    """`feed(read)` and `poll(now)` return the scans decided so far; `flush()` decides all.

    Reads of one EPC are expected in (roughly) time order; a read older than the open
    dwell's last read is still tallied into it.
    """

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config or SmoothingConfig()
        self.stats: Counter[str] = Counter()
        self._dwells: dict[str, _Dwell] = {}

    def __len__(self) -> int:
        """Open dwells (tags currently in view or not yet decided)."""
        return len(self._dwells)

    def feed(self, read: TagRead) -> list[SmoothedScan]:
        cfg = self.config
        self.stats["reads"] += read.count
        if cfg.rssi_floor_dbm is not None and (
            read.rssi_dbm is None or read.rssi_dbm < cfg.rssi_floor_dbm
        ):
            self.stats["reads_below_floor"] += read.count
            return []
        out: list[SmoothedScan] = []
        dwell = self._dwells.get(read.epc)
        if dwell is not None and read.at - dwell.last_seen > cfg.window:
            self._close(read.epc, dwell, out)
            dwell = None
        if dwell is None:
            dwell = self._dwells[read.epc] = _Dwell(read.at, read.at)
        dwell.first_seen = min(dwell.first_seen, read.at)
        dwell.last_seen = max(dwell.last_seen, read.at)
        peak = _NO_RSSI if read.rssi_dbm is None else read.rssi_dbm
        tally = dwell.tallies.get(read.read_point)
        if tally is None:
            dwell.tallies[read.read_point] = _Tally(
                read.count, peak, read.antenna, read.at, read.at
            )
        else:
            tally.read_count += read.count
            if peak > tally.peak:
                tally.peak, tally.antenna = peak, read.antenna
            tally.first_seen = min(tally.first_seen, read.at)
            tally.last_seen = max(tally.last_seen, read.at)
        if (
            cfg.max_dwell is not None
            and not dwell.decided
            and dwell.last_seen - dwell.first_seen >= cfg.max_dwell
        ):
            dwell.decided = True
            self._decide(read.epc, dwell, out)
        return out

    def poll(self, now: datetime) -> list[SmoothedScan]:
        """Decide the dwells that have been quiet for `window` (or lasted `max_dwell`)."""
        cfg = self.config
        out: list[SmoothedScan] = []
        for epc, dwell in list(self._dwells.items()):
            if now - dwell.last_seen > cfg.window:
                self._close(epc, dwell, out)
            elif (
                cfg.max_dwell is not None
                and not dwell.decided
                and now - dwell.first_seen >= cfg.max_dwell
            ):
                dwell.decided = True
                self._decide(epc, dwell, out)
        return out

    def flush(self) -> list[SmoothedScan]:
        """Decide every open dwell now (on shutdown or disconnect)."""
        out: list[SmoothedScan] = []
        for epc, dwell in list(self._dwells.items()):
            self._close(epc, dwell, out)
        return out

    def _close(self, epc: str, dwell: _Dwell, out: list[SmoothedScan]) -> None:
        del self._dwells[epc]
        if not dwell.decided:
            self._decide(epc, dwell, out)

    def _decide(self, epc: str, dwell: _Dwell, out: list[SmoothedScan]) -> None:
        winner_point, winner = max(dwell.tallies.items(), key=lambda item: item[1].rank())
        losers = tuple(point for point in dwell.tallies if point != winner_point)
        if losers:
            self.stats["cross_reads_suppressed"] += len(losers)
        if winner.read_count < self.config.min_reads:
            self.stats["dwells_below_min_reads"] += 1
            return
        self.stats["scans"] += 1
        out.append(
            SmoothedScan(
                epc=epc,
                read_point=winner_point,
                antenna=winner.antenna,
                read_count=winner.read_count,
                peak_rssi_dbm=None if winner.peak == _NO_RSSI else winner.peak,
                first_seen=winner.first_seen,
                last_seen=winner.last_seen,
                suppressed=losers,
            )
        )
