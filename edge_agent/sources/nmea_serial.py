"""GNSS receivers speaking NMEA 0183 on a serial port (USB, RS-232) or a pyserial URL.

The same pure parser as the TCP source (`nmea_parser`: sentences of one epoch merged into one
checked fix) on the shared serial link (`serial_port`): a receiver unplugged is reported
offline and reopened with backoff.
"""

from __future__ import annotations

from datetime import datetime

from event_contract import Event

from ..config import NmeaSerialSourceConfig
from . import Backoff, SourceContext, utc_now
from .nmea import position_event
from .nmea_parser import Fix, NmeaLimits, NmeaParser
from .serial_port import SerialLineSource


class NmeaSerialSource(SerialLineSource):
    """`async for event in NmeaSerialSource(config, ctx)`: PositionEvents from a receiver."""

    what = "GPS"

    def __init__(
        self,
        config: NmeaSerialSourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
        idle_timeout_s: float | None = 10.0,
        limits: NmeaLimits | None = None,
    ) -> None:
        # A receiver sends at least once a second: silence means a dead port (or wrong baud
        # rate, which reads as garbage lines, counted by the parser).
        super().__init__(
            device=config.device,
            port_url=config.port_url,
            baudrate=config.baudrate,
            ctx=ctx,
            backoff=backoff,
            max_line=256,  # NMEA allows 82 characters; leave room for proprietary talkers
            idle_timeout_s=idle_timeout_s,
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
