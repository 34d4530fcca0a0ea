"""RFID readers over LLRP: sllurp's LLRPReaderClient in, smoothed ScanEvents out.

sllurp runs its socket on a thread of its own and calls back from there; every callback
only hands plain values to the event loop with `call_soon_threadsafe`, and sllurp's tag
dicts are turned into `TagRead`s (`tag_reads`, pure) before anything else sees them. The
reads go through `RfidSmoother` (one scan per EPC and dwell, cross-reads suppressed) and
each decided scan becomes a ScanEvent with the EPC's scheme from `epc.decode_epc`.

Dwell windows run on the gateway's clock, not the reader's timestamps: `poll(now)` needs
the same clock as the reads, and a reader's clock is whatever it was last set to.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sllurp.llrp import LLRPReaderClient, LLRPReaderConfig, LLRPReaderState

from event_contract import (
    CodeKind,
    DeviceState,
    Event,
    ReadPoint,
    ScanEvent,
    new_event_id,
)
from identifiers.epc import DecodedEpc, decode_epc, normalize_epc_hex

from ..config import RfidLlrpSourceConfig, RfidSmoothingConfig
from . import Backoff, SourceContext, utc_now
from .rfid_smoothing import RfidSmoother, SmoothedScan, SmoothingConfig, TagRead

log = logging.getLogger(__name__)


def smoothing_of(config: RfidSmoothingConfig) -> SmoothingConfig:
    return SmoothingConfig(
        window=timedelta(seconds=config.window_s),
        rssi_floor_dbm=config.rssi_floor_dbm,
        min_reads=config.min_reads,
        max_dwell=None if config.max_dwell_s is None else timedelta(seconds=config.max_dwell_s),
    )


def sllurp_config(config: RfidLlrpSourceConfig) -> LLRPReaderConfig:
    """What sllurp is told; every report field the smoother needs is switched on."""
    settings: dict[str, Any] = {
        "antennas": [a.antenna for a in config.antennas],
        "session": config.session,
        "mode_identifier": config.mode_identifier,
        "tag_population": config.tag_population,
        "report_timeout_ms": config.report_timeout_ms,
        "reconnect": False,  # the source reconnects, with backoff and health reports
        "tag_content_selector": {
            "EnableAntennaID": True,
            "EnablePeakRSSI": True,
            "EnableFirstSeenTimestamp": True,
            "EnableLastSeenTimestamp": True,
            "EnableTagSeenCount": True,
        },
    }
    powers = antenna_powers(config)
    if powers is not None:
        settings["tx_power_dbm"] = powers
    return LLRPReaderConfig(settings)


# sllurp picks the power table entry at or below the wish, the top one for anything above it.
READER_MAXIMUM_DBM = math.inf


def antenna_powers(config: RfidLlrpSourceConfig) -> dict[int, float] | None:
    """Transmit power per antenna in dBm (an antenna's own, else the reader's); None: all at
    the reader's maximum."""
    if config.tx_power_dbm is None and all(a.tx_power_dbm is None for a in config.antennas):
        return None
    default = READER_MAXIMUM_DBM if config.tx_power_dbm is None else config.tx_power_dbm
    return {
        a.antenna: default if a.tx_power_dbm is None else a.tx_power_dbm for a in config.antennas
    }


def power_problems(requested: Mapping[int, float] | None, table: Sequence[float]) -> list[str]:
    """Antennas asked for less power than the reader's lowest level. sllurp then picks its
    table's index 0, which LLRP reads as the maximum: the opposite of what was wanted."""
    levels = table[1:]  # sllurp's table starts with a placeholder at index 0
    if not requested or not levels:
        return []
    lowest = min(levels)
    return [
        f"antenna {antenna}: {dbm:g} dBm is below the reader's lowest level {lowest:g} dBm, "
        "so it transmits at full power"
        for antenna, dbm in sorted(requested.items())
        if dbm < lowest
    ]


def tag_reads(
    tags: list[Mapping[str, Any]], antennas: Mapping[int, ReadPoint], at: datetime
) -> tuple[list[TagRead], int]:
    """sllurp's tag dicts to TagReads; also returns how many were dropped (unknown antenna,
    no EPC). Pure: sllurp's dict shapes end here."""
    reads: list[TagRead] = []
    dropped = 0
    for tag in tags:
        raw = tag.get("EPC-96") or tag.get("EPC")
        antenna = tag.get("AntennaID")
        read_point = antennas.get(antenna) if isinstance(antenna, int) else None
        if not isinstance(raw, bytes | str) or not raw or read_point is None:
            dropped += 1
            continue
        epc = normalize_epc_hex(raw.decode("ascii") if isinstance(raw, bytes) else raw)
        rssi = tag.get("PeakRSSI")
        count = tag.get("TagSeenCount")
        reads.append(
            TagRead(
                epc=epc,
                read_point=read_point,
                antenna=antenna,
                rssi_dbm=float(rssi) if isinstance(rssi, int | float) else None,
                at=at,
                count=count if isinstance(count, int) and count > 0 else 1,
            )
        )
    return reads, dropped


@dataclass(frozen=True, slots=True)
class _Lost:
    reason: str


@dataclass(frozen=True, slots=True)
class _Inventorying:
    pass


class RfidLlrpSource:
    """`async for event in RfidLlrpSource(config, ctx)`: smoothed RFID ScanEvents."""

    def __init__(
        self,
        config: RfidLlrpSourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
        poll_interval_s: float = 0.2,
        client_factory: Callable[..., LLRPReaderClient] = LLRPReaderClient,
    ) -> None:
        self.config = config
        self.device = config.device
        self.ctx = ctx
        self.backoff = backoff or Backoff()
        self.poll_interval_s = poll_interval_s
        self.client_factory = client_factory
        self.smoother = RfidSmoother(smoothing_of(config.smoothing))
        self.antennas = {
            a.antenna: ReadPoint(
                site=ctx.site, door=a.read_point.door, station=a.read_point.station
            )
            for a in config.antennas
        }
        self.stats: Counter[str] = Counter()
        self.last_error: str | None = None
        self._rng = random.Random()

    def counters(self) -> dict[str, float]:
        return {k: float(v) for k, v in (self.stats + self.smoother.stats).items()}

    def _label(self) -> str:
        return f"RFID reader {self.device} at {self.config.host}:{self.config.port}"

    def to_event(self, scan: SmoothedScan, received_at: datetime) -> ScanEvent:
        decoded = decode_epc(scan.epc)
        if isinstance(decoded, DecodedEpc):
            symbology = decoded.scheme
        else:
            self.stats["epc_undecoded"] += 1
            symbology = None
        assert isinstance(scan.read_point, ReadPoint)
        return ScanEvent(
            event_id=new_event_id(),
            device=self.device,
            seq=self.ctx.next_seq(self.device),
            device_time=scan.first_seen,
            received_at=received_at,
            code=scan.epc,
            code_kind=CodeKind.EPC,
            symbology=symbology,
            antenna=scan.antenna,
            rssi_dbm=scan.peak_rssi_dbm,
            read_count=scan.read_count,
            read_point=scan.read_point,
            stage=self.config.stage,
        )

    async def _fail(self, message: str) -> None:
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error = message
        await self.ctx.report_state(self.device, DeviceState.OFFLINE, message)

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            inbox: asyncio.Queue[list[TagRead] | _Lost | _Inventorying] = asyncio.Queue()

            # These run on sllurp's thread: convert, then hand over; never touch loop state.
            def on_tags(_reader: object, tags: list[dict[str, Any]], inbox=inbox) -> None:
                reads, dropped = tag_reads(tags, self.antennas, utc_now())
                loop.call_soon_threadsafe(self._deliver, inbox, reads, dropped)

            def on_lost(_reader: object, inbox=inbox) -> None:
                loop.call_soon_threadsafe(inbox.put_nowait, _Lost("closed the connection"))

            def on_inventorying(*_args: object, inbox=inbox) -> None:
                loop.call_soon_threadsafe(inbox.put_nowait, _Inventorying())

            client = self.client_factory(
                self.config.host, self.config.port, sllurp_config(self.config)
            )
            client.add_tag_report_callback(on_tags)
            client.add_disconnected_callback(on_lost)
            client.add_state_callback(LLRPReaderState.STATE_INVENTORYING, on_inventorying)
            try:
                await asyncio.to_thread(client.connect)
            except OSError as err:
                self.stats["connect_failures"] += 1
                reason = err.strerror or str(err) or type(err).__name__
                await self._fail(f"{self._label()}: cannot connect: {reason}")
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1
                continue
            self.stats["connects"] += 1
            reason = await self._wait_inventorying(inbox, client)
            got_reads = False
            try:
                while reason is None:
                    try:
                        item = await asyncio.wait_for(inbox.get(), self.poll_interval_s)
                    except TimeoutError:
                        item = None
                    now = utc_now()
                    if isinstance(item, _Lost):
                        reason = item.reason
                        break
                    for read in item if isinstance(item, list) else ():
                        got_reads = True
                        for scan in self.smoother.feed(read):
                            yield self._counted(self.to_event(scan, now))
                    for scan in self.smoother.poll(now):
                        yield self._counted(self.to_event(scan, now))
            finally:
                await asyncio.to_thread(client.hard_disconnect)
            # Tags in view when the link dropped are decided now rather than lost.
            now = utc_now()
            for scan in self.smoother.flush():
                yield self._counted(self.to_event(scan, now))
            self.stats["disconnects"] += 1
            await self._fail(f"{self._label()} {reason}; reconnecting")
            attempt = 0 if got_reads else attempt + 1
            await asyncio.sleep(self.backoff.delay(attempt, self._rng))

    async def _wait_inventorying(self, inbox: asyncio.Queue[Any], client: Any) -> str | None:
        """None once the reader inventories; otherwise why not."""
        try:
            async with asyncio.timeout(self.config.configure_timeout_s):
                while True:
                    item = await inbox.get()
                    if isinstance(item, _Inventorying):
                        break
                    if isinstance(item, _Lost):
                        return f"closed the connection while being configured: {item.reason}"
        except TimeoutError:
            return (
                f"did not start inventory within {self.config.configure_timeout_s:g} s "
                "(is another client connected, or are the antennas and power invalid?)"
            )
        self.last_error = None
        log.info("%s: inventorying", self._label())
        table = getattr(getattr(client, "llrp", None), "tx_power_table", None) or []
        problems = power_problems(antenna_powers(self.config), table)
        for problem in problems:
            log.warning("%s: %s", self._label(), problem)
        await self.ctx.report_state(
            self.device,
            DeviceState.DEGRADED if problems else DeviceState.ONLINE,
            "; ".join([f"inventorying on {self.config.host}:{self.config.port}", *problems]),
        )
        return None

    def _deliver(self, inbox: asyncio.Queue[Any], reads: list[TagRead], dropped: int) -> None:
        self.stats["tag_reports"] += 1
        self.stats["reads_dropped_unmapped"] += dropped
        inbox.put_nowait(reads)

    def _counted(self, event: ScanEvent) -> ScanEvent:
        self.stats["events"] += 1
        return event
