"""The edge agent: run a gateway's sources, stamp device status, hand events to the publisher.

Beside the events it keeps the gateway's health on MQTT (edge_agent/health.py) and shows the
dock the verdicts on its scans (edge_agent/feedback.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from event_contract import (
    DeviceState,
    DeviceStatus,
    Event,
    feedback_topic,
    gateway_state_topic,
    new_event_id,
)
from mqtt_client import BrokerAddress

from .config import (
    GatewayConfig,
    GpsdSourceConfig,
    NmeaSerialSourceConfig,
    NmeaTcpSourceConfig,
    OutboxConfig,
    RfidLlrpSourceConfig,
    ScannerSerialSourceConfig,
    ScannerTcpSourceConfig,
    SourceConfig,
)
from .feedback import DockFeedback
from .health import DeviceHealth, GatewayHealth, Snapshot
from .outbox import Outbox
from .publisher import Message, OnPublished, Publisher
from .sources import Source, SourceContext, utc_now
from .sources.gpsd import GpsdSource
from .sources.nmea import NmeaTcpSource
from .sources.nmea_serial import NmeaSerialSource
from .sources.rfid_llrp import RfidLlrpSource
from .sources.scanner import OnReject, ScannerTcpSource
from .sources.scanner_serial import ScannerSerialSource

log = logging.getLogger(__name__)

OVERFLOW_REPORT_S = 60.0

# A new kind of device: a config model in config.py, a module in sources/, a line here.
SOURCE_TYPES: dict[type[Any], Callable[..., Source]] = {
    NmeaTcpSourceConfig: NmeaTcpSource,
    NmeaSerialSourceConfig: NmeaSerialSource,
    GpsdSourceConfig: GpsdSource,
    ScannerTcpSourceConfig: ScannerTcpSource,
    ScannerSerialSourceConfig: ScannerSerialSource.from_config,
    RfidLlrpSourceConfig: RfidLlrpSource,
}
# Sources that refuse scans at the gateway (a bad check digit) and so take `on_reject=`:
# the dock hears about those at once, through the feedback outputs.
REJECTING_SOURCES: frozenset[type[Any]] = frozenset(
    {ScannerTcpSourceConfig, ScannerSerialSourceConfig}
)


def open_outbox(config: OutboxConfig) -> Outbox:
    return Outbox(
        config.path or ":memory:",
        max_events=config.max_events,
        max_bytes=config.max_bytes,
        overflow=config.overflow,
        sync=config.sync,
        fsync_window_ms=config.fsync_window_ms,
    )


def build_source(
    config: SourceConfig, ctx: SourceContext, *, on_reject: OnReject | None = None
) -> Source:
    factory = SOURCE_TYPES[type(config)]
    if on_reject is not None and type(config) in REJECTING_SOURCES:
        return factory(config, ctx, on_reject=on_reject)
    return factory(config, ctx)


class EdgeAgent:
    """`await EdgeAgent(config, broker).run(stop)` until `stop` is set.

    Raises PublisherError if the broker cannot be reached at start. A device that cannot be
    reached does not stop the agent: it is reported offline and retried.
    """

    def __init__(
        self,
        config: GatewayConfig,
        broker: BrokerAddress,
        *,
        on_published: OnPublished | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        # Built first: a feedback output that cannot start should fail before anything opens.
        self.feedback = DockFeedback.from_config(
            gateway=config.gateway,
            names=config.feedback.outputs,
            options=config.feedback.options,
        )
        self.health = GatewayHealth(
            site=config.site,
            gateway=config.gateway,
            snapshot=self.snapshot,
            interval_s=config.health.status_interval_s,
        )
        self.state_topic = gateway_state_topic(config.site, config.gateway)
        self.outbox = open_outbox(config.outbox)
        self.publisher = Publisher(
            site=config.site,
            gateway=config.gateway,
            broker=broker,
            publish=config.publish,
            outbox=self.outbox,
            on_published=on_published,
            will=(self.state_topic, self.health.will()),
            on_connected=lambda: self.health.report("connected"),
            subscriptions={feedback_topic(config.site, config.gateway): self.feedback.on_message},
        )
        self.health.attach(
            lambda payload: self.publisher.publish_retained(self.state_topic, payload)
        )
        self._overflow_reported = 0
        self._overflow_quiet_until = 0.0
        self.events_read: dict[str, int] = {s.device: 0 for s in config.sources}
        self.last_read: dict[str, datetime] = {}
        self.device_states: dict[str, tuple[DeviceState, str]] = {}
        self.sources: dict[str, Source] = {}
        self.ready = asyncio.Event()  # set once the broker accepted us and sources are running

    @property
    def published(self) -> int:
        return self.publisher.published

    def counters(self) -> dict[str, int]:
        return {
            "events_read": sum(self.events_read.values()),
            "published": self.publisher.published,
            "publish_failed": self.publisher.failed,
            "publish_retried": self.publisher.retried,
            "in_flight": self.publisher.in_flight,
            "queued": self.outbox.depth(),
            **self.outbox.counters(),
            **self.feedback.counters(),
        }

    def snapshot(self) -> Snapshot:
        """The agent's health right now, for the retained status (edge_agent/health.py)."""
        devices = {}
        for device, read in self.events_read.items():
            state, detail = self.device_states.get(device, (None, None))
            devices[device] = DeviceHealth(
                state=state.value if state is not None else None,
                detail=detail,
                events_read=read,
                last_read=self.last_read.get(device),
            )
        return Snapshot(counters=self.counters(), devices=devices)

    def _goodbye(self) -> Message:
        return (self.state_topic, self.health.payload("offline", "agent stopped"))

    def next_seq(self, device: str) -> int:
        """Per-device seq, kept in the outbox so it keeps rising across restarts."""
        return self.outbox.next_seq(device)

    def _submit(self, events: list[Event]) -> None:
        self.publisher.submit(events)
        if self.outbox.overflowed:
            self._report_overflow()

    def _report_overflow(self) -> None:
        """The outbox overflowed: log it and publish it as the gateway's own status.

        Once when it starts, then at most every OVERFLOW_REPORT_S while it goes on: each
        report takes a place in the full outbox too.
        """
        box = self.outbox
        box.overflowed = False
        lost = box.dropped + box.refused
        now_s = time.monotonic()
        if lost == self._overflow_reported or now_s < self._overflow_quiet_until:
            return
        self._overflow_reported = lost
        self._overflow_quiet_until = now_s + OVERFLOW_REPORT_S
        what = "dropped the oldest" if box.overflow == "drop_oldest" else "refused new"
        detail = (
            f"gateway {self.config.gateway}: outbox full (max_events={box.max_events}, "
            f"max_bytes={box.max_bytes}); {what} events, {lost} so far; is the broker reachable?"
        )
        log.error("%s", detail)
        now = utc_now()
        status = DeviceStatus(
            event_id=new_event_id(),
            device=self.config.gateway,
            seq=self.next_seq(self.config.gateway),
            device_time=now,
            received_at=now,
            state=DeviceState.DEGRADED,
            detail=detail[:500],
            counters={k: float(v) for k, v in box.counters().items()},
        )
        self.publisher.submit([status])

    async def report_state(self, device: str, state: DeviceState, detail: str) -> None:
        """Queue a DeviceStatus when a device's state changes (not on every failed retry)."""
        previous = self.device_states.get(device)
        self.device_states[device] = (state, detail)
        if previous is not None and previous[0] == state:
            return
        self._submit([self._status(device, state, detail)])

    def _status(self, device: str, state: DeviceState, detail: str) -> DeviceStatus:
        source = self.sources.get(device)
        counters = source.counters() if source is not None else {}
        now = utc_now()
        return DeviceStatus(
            event_id=new_event_id(),
            device=device,
            seq=self.next_seq(device),
            device_time=now,
            received_at=now,
            state=state,
            detail=detail[:500],
            counters={k: float(v) for k, v in list(counters.items())[:64]},
        )

    async def run(self, stop: asyncio.Event) -> None:
        name = self.config.gateway
        try:
            await self.publisher.start()
        except BaseException:
            self.outbox.close()
            raise
        ctx = SourceContext(
            site=self.config.site,
            gateway=name,
            next_seq=self.next_seq,
            report_state=self.report_state,
        )
        tasks = []
        for source_config in self.config.sources:
            source = build_source(source_config, ctx, on_reject=self.feedback.on_reject)
            self.sources[source.device] = source
            tasks.append(asyncio.create_task(self._pump(source), name=f"{name}/{source.device}"))
        health = asyncio.create_task(self.health.run(), name=f"{name}/health")
        log.info("gateway %s: running %d sources", name, len(tasks))
        self.ready.set()
        stopping = asyncio.create_task(stop.wait())
        publisher = self.publisher.task
        try:
            waiting = {stopping} | ({publisher} if publisher else set())
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if publisher is not None and publisher.done() and not stopping.done():
                # The batching loop only ends early on a bug; do not keep reading into a void.
                publisher.result()
                raise RuntimeError(f"gateway {name}: publisher stopped unexpectedly")
        finally:
            stopping.cancel()
            health.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(health, *tasks, return_exceptions=True)
            for device, (state, _) in list(self.device_states.items()):
                if state == DeviceState.ONLINE:
                    detail = f"gateway {name}: agent stopping"
                    self.device_states[device] = (DeviceState.OFFLINE, detail)
                    self._submit([self._status(device, DeviceState.OFFLINE, detail)])
            try:
                await self.publisher.close(goodbye=self._goodbye)
            finally:
                self.outbox.close()

    async def _pump(self, source: Source) -> None:
        try:
            # aclosing: on cancellation the source's finally blocks (closing its socket) run
            # now, not whenever the garbage collector finds the generator.
            async with contextlib.aclosing(aiter(source)) as events:
                async for event in events:
                    # Durable before the next read: see edge_agent/outbox.py for what that costs.
                    self._submit([event])
                    self.events_read[source.device] += 1
                    self.last_read[source.device] = event.received_at
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # A bug in a source must not take the other devices down with it.
            log.exception("gateway %s: source %s failed", self.config.gateway, source.device)
            await self.report_state(source.device, DeviceState.ERROR, f"source failed: {err!r}")
