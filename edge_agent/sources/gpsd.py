"""gpsd as a source: its JSON stream over TCP, turned into PositionEvents.

gpsd owns the receiver (serial, USB, whatever driver it needs) and we read its decoded
reports: on each connection we ask for them with `?WATCH=`, then `gpsd_json` (pure) checks
each TPV as the NMEA path checks an epoch.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from event_contract import Event

from ..config import GpsdSourceConfig
from . import Backoff, SourceContext, TcpLineSource, utc_now
from .fix_filter import Fix, FixLimits
from .gpsd_json import GpsdParser, watch_command
from .nmea import position_event

log = logging.getLogger(__name__)


class GpsdSource(TcpLineSource):
    """`async for event in GpsdSource(config, ctx)`: PositionEvents from a gpsd daemon."""

    what = "gpsd"
    hint = "gpsd daemon (or simulator)"

    def __init__(
        self,
        config: GpsdSourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
        idle_timeout_s: float | None = 10.0,
        limits: FixLimits | None = None,
    ) -> None:
        # gpsd sends a TPV per epoch, at least once a second, once watching; silence means a
        # dead link (or a gpsd that lost its receiver, which it reports as DEVICE, not TPV).
        super().__init__(
            device=config.device,
            host=config.host,
            port=config.port,
            ctx=ctx,
            backoff=backoff,
            idle_timeout_s=idle_timeout_s,
            max_line=16_384,  # a SKY listing every satellite in view runs to a few KB
        )
        self.gpsd_device = config.gpsd_device
        self.parser = GpsdParser(limits, now=utc_now, device=config.gpsd_device)

    def counters(self) -> dict[str, float]:
        counts = {f"gpsd_{name}": n for name, n in self.parser.counts().items()}
        return {**super().counters(), **counts}

    async def _on_connect(self, writer: asyncio.StreamWriter) -> None:
        # gpsd says nothing but VERSION until asked; ask on every connection.
        writer.write(watch_command(self.gpsd_device))
        await writer.drain()

    def _events(self, fixes: list[Fix], received_at: datetime) -> list[Event]:
        return [
            position_event(
                fix, device=self.device, seq=self.ctx.next_seq(self.device), received_at=received_at
            )
            for fix in fixes
        ]

    def _on_line(self, line: str, received_at: datetime) -> list[Event]:
        errors = self.parser.errors
        events = self._events(self.parser.feed(line), received_at)
        if self.parser.errors != errors:
            log.warning("%s answered: %s", self._label(), self.parser.last_error)
        return events

    def _on_disconnect(self, received_at: datetime) -> list[Event]:
        return self._events(self.parser.flush(), received_at)
