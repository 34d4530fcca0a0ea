"""The edge agent: run a gateway's sources, stamp device status, hand events to the publisher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from event_contract import DeviceState, DeviceStatus, Event, new_event_id
from mqtt_client import BrokerAddress

from .config import GatewayConfig, NmeaTcpSourceConfig, ScannerTcpSourceConfig, SourceConfig
from .publisher import OnPublished, Publisher
from .sources import Source, SourceContext, utc_now
from .sources.nmea import NmeaTcpSource
from .sources.scanner import ScannerTcpSource

log = logging.getLogger(__name__)

# A new kind of device: a config model in config.py, a module in sources/, a line here.
SOURCE_TYPES: dict[type[Any], Callable[[Any, SourceContext], Source]] = {
    NmeaTcpSourceConfig: NmeaTcpSource,
    ScannerTcpSourceConfig: ScannerTcpSource,
}


def build_source(config: SourceConfig, ctx: SourceContext) -> Source:
    return SOURCE_TYPES[type(config)](config, ctx)


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
        queue_size: int = 10_000,
    ) -> None:
        self.config = config
        self.broker = broker
        # Bounded, so a publisher that cannot keep up slows the sources down instead of
        # growing memory; the TCP devices then buffer on their side.
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_size)
        self.publisher = Publisher(
            site=config.site,
            gateway=config.gateway,
            broker=broker,
            publish=config.publish,
            queue=self.queue,
            on_published=on_published,
        )
        # Per-device seq counters, in memory: they restart at 0 with the process. The durable
        # outbox issue will persist them so seq keeps going up across restarts.
        self._seq: dict[str, int] = {}
        self.events_read: dict[str, int] = {s.device: 0 for s in config.sources}
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
            "in_flight": self.publisher.in_flight,
            "queued": self.queue.qsize(),
        }

    def next_seq(self, device: str) -> int:
        seq = self._seq.get(device, 0)
        self._seq[device] = seq + 1
        return seq

    async def report_state(self, device: str, state: DeviceState, detail: str) -> None:
        """Queue a DeviceStatus when a device's state changes (not on every failed retry)."""
        previous = self.device_states.get(device)
        self.device_states[device] = (state, detail)
        if previous is not None and previous[0] == state:
            return
        await self.queue.put(self._status(device, state, detail))

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
        await self.publisher.start()
        ctx = SourceContext(
            site=self.config.site,
            gateway=name,
            next_seq=self.next_seq,
            report_state=self.report_state,
        )
        tasks = []
        for source_config in self.config.sources:
            source = build_source(source_config, ctx)
            self.sources[source.device] = source
            tasks.append(asyncio.create_task(self._pump(source), name=f"{name}/{source.device}"))
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
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for device, (state, _) in list(self.device_states.items()):
                if state == DeviceState.ONLINE:
                    detail = f"gateway {name}: agent stopping"
                    self.device_states[device] = (DeviceState.OFFLINE, detail)
                    with contextlib.suppress(asyncio.QueueFull):
                        self.queue.put_nowait(self._status(device, DeviceState.OFFLINE, detail))
            await self.publisher.close()

    async def _pump(self, source: Source) -> None:
        try:
            # aclosing: on cancellation the source's finally blocks (closing its socket) run
            # now, not whenever the garbage collector finds the generator.
            async with contextlib.aclosing(aiter(source)) as events:
                async for event in events:
                    await self.queue.put(event)
                    self.events_read[source.device] += 1
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # A bug in a source must not take the other devices down with it.
            log.exception("gateway %s: source %s failed", self.config.gateway, source.device)
            await self.report_state(source.device, DeviceState.ERROR, f"source failed: {err!r}")
