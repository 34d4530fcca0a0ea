"""GNSS receivers speaking NMEA 0183: a TCP source built on the pure parser.

The parser lives in `nmea_sentences` (one sentence to checked values), `nmea_parser`
(sentences of one epoch merged into one `Fix`) and `fix_filter` (the checks a fix passes,
shared with the gpsd source); this module re-exports what sources and tests use.
"""

from __future__ import annotations

from datetime import datetime

from event_contract import Event, PositionEvent, new_event_id

from ..config import NmeaTcpSourceConfig
from . import Backoff, SourceContext, TcpLineSource, utc_now
from .nmea_parser import (
    FUTURE,
    HDOP,
    JUMP,
    NO_DATE,
    NO_EPOCH,
    NO_POSITION,
    WEEK_ROLLOVER,
    WEEK_ROLLOVER_CORRECTED,
    ZERO_POSITION,
    Fix,
    NmeaLimits,
    NmeaParser,
    decode_lines,
)
from .nmea_sentences import BAD_CHECKSUM, KNOT_MPS, NO_FIX, TALKERS, UNPARSEABLE

__all__ = [
    "BAD_CHECKSUM",
    "FUTURE",
    "HDOP",
    "JUMP",
    "KNOT_MPS",
    "NO_DATE",
    "NO_EPOCH",
    "NO_FIX",
    "NO_POSITION",
    "TALKERS",
    "UNPARSEABLE",
    "WEEK_ROLLOVER",
    "WEEK_ROLLOVER_CORRECTED",
    "ZERO_POSITION",
    "Fix",
    "NmeaLimits",
    "NmeaParser",
    "NmeaTcpSource",
    "decode_lines",
    "position_event",
]


def position_event(fix: Fix, *, device: str, seq: int, received_at: datetime) -> PositionEvent:
    return PositionEvent(
        event_id=new_event_id(),
        device=device,
        seq=seq,
        device_time=fix.time,
        received_at=received_at,
        lat=fix.lat,
        lon=fix.lon,
        speed_mps=fix.speed_mps,
        heading_deg=fix.heading_deg,
        fix_quality=fix.fix_quality,
        hdop=fix.hdop,
        satellites=fix.satellites,
        altitude_m=fix.altitude_m,
    )


class NmeaTcpSource(TcpLineSource):
    """`async for event in NmeaTcpSource(config, ctx)`: PositionEvents from a receiver on TCP."""

    what = "GPS"
    hint = "GPS receiver (or simulator)"

    def __init__(
        self,
        config: NmeaTcpSourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
        idle_timeout_s: float | None = 10.0,
        limits: NmeaLimits | None = None,
    ) -> None:
        # A receiver sends at least once a second, so silence means a dead (half-open) link.
        super().__init__(
            device=config.device,
            host=config.host,
            port=config.port,
            ctx=ctx,
            backoff=backoff,
            idle_timeout_s=idle_timeout_s,
            max_line=256,  # NMEA allows 82 characters; leave room for proprietary talkers
        )
        # The receiver's clock against the gateway's: catches future and rolled-back dates.
        self.parser = NmeaParser(limits, now=utc_now)

    def counters(self) -> dict[str, float]:
        counts = {f"nmea_{name}": n for name, n in self.parser.counts().items()}
        return {**super().counters(), **counts}

    def _events(self, fixes: list[Fix], received_at: datetime) -> list[Event]:
        return [
            position_event(
                fix, device=self.device, seq=self.ctx.next_seq(self.device), received_at=received_at
            )
            for fix in fixes
        ]

    def _on_line(self, line: str, received_at: datetime) -> list[Event]:
        return self._events(self.parser.feed(line), received_at)

    def _on_disconnect(self, received_at: datetime) -> list[Event]:
        return self._events(self.parser.flush(), received_at)
