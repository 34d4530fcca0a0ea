"""A fake LLRP reader on TCP that sllurp's LLRPReaderClient really connects to.

It behaves like a fixed reader as far as a client can tell: it greets with a
READER_EVENT_NOTIFICATION (ConnectionAttemptEvent), refuses a second client the way readers
do, answers capabilities with antennas, a transmit power table and an RF mode table,
acknowledges config and ROSpec/AccessSpec messages, sends KEEPALIVEs if asked to, and sends
RO_ACCESS_REPORTs (`report`) while a ROSpec is enabled or started. Given a `TagScenario`
it plays it: while inventorying, every `report_interval_s` it reports what the scenario's
tags did since the last report (the scenario's clock starts at the first inventory). It
records the ROSpec it was given (`rospec`, `tx_power_dbm()`) so a test can check what
reached the reader. The bytes come from `llrp_messages`; this module only does the talking.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Self

from . import llrp_messages as m
from .tag_population import Observation, TagScenario

log = logging.getLogger(__name__)

# ConnectionAttemptEvent status (16.2.7.6.9): a client-initiated connection already exists.
REFUSED_ALREADY_CONNECTED = 2
_STARTS = {"ENABLE_ROSPEC", "START_ROSPEC"}
_STOPS = {"DISABLE_ROSPEC", "STOP_ROSPEC", "DELETE_ROSPEC"}


class FakeLlrpReader:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        capabilities: m.Capabilities | None = None,
        keepalive_s: float | None = None,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
        scenario: TagScenario | None = None,
        report_interval_s: float = 0.1,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.capabilities = capabilities or m.Capabilities()
        self.keepalive_s = keepalive_s
        self.clock_us = clock_us
        self.stats: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._client: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._inventorying = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self.scenario = scenario
        self.report_interval_s = report_interval_s
        self.rospec: m.RoSpec | None = None  # the last ROSpec a client added
        self._scenario_start: tuple[float, int] | None = None  # (monotonic s, UTC us)
        self._player: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def inventorying(self) -> bool:
        return self._inventorying.is_set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("fake LLRP reader listening on %s:%d", self.host, self.port)

    async def close(self) -> None:
        self.drop_client()
        if self._player is not None:
            self._player.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # Let connection handlers see the abort and finish, rather than be cancelled later
        # by the loop's shutdown (which asyncio's stream callback logs as an error).
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_inventorying(self, timeout_s: float | None = 10.0) -> None:
        """Return once the client has enabled or started its ROSpec."""
        async with asyncio.timeout(timeout_s):
            await self._inventorying.wait()

    def report(self, tags: list[m.TagObservation]) -> bool:
        """Send one RO_ACCESS_REPORT; False (and nothing sent) when not inventorying."""
        if self._client is None or not self.inventorying:
            return False
        self._client.write(m.ro_access_report(next(self._ids), tags))
        self.stats["reports"] += 1
        self.stats["tags_reported"] += len(tags)
        return True

    def tx_power_dbm(self) -> dict[int, float]:
        """The transmit power the client set per antenna, looked up in the power table."""
        table = self.capabilities.tx_power_dbm
        return {
            a.antenna: table[a.tx_power_index - 1]
            for a in (self.rospec.settings if self.rospec else ())
            if a.tx_power_index is not None and 1 <= a.tx_power_index <= len(table)
        }

    def scenario_time(self) -> float:
        """Seconds into the scenario (0 until the first inventory starts it)."""
        if self._scenario_start is None:
            return 0.0
        return time.monotonic() - self._scenario_start[0]

    def _observation(self, line: Observation) -> m.TagObservation:
        assert self._scenario_start is not None
        utc_us = self._scenario_start[1]
        return m.TagObservation(
            bytes.fromhex(line.epc),
            line.antenna,
            line.peak_rssi_dbm,
            utc_us + round(line.first_seen_s * 1e6),
            utc_us + round(line.last_seen_s * 1e6),
            line.seen_count,
        )

    async def _play(self, scenario: TagScenario) -> None:
        if self._scenario_start is None:
            self._scenario_start = (time.monotonic(), self.clock_us())
        since = self.scenario_time()
        while self.inventorying:
            await asyncio.sleep(self.report_interval_s)
            now = self.scenario_time()
            lines = scenario.report(since, now)
            since = now
            if lines:
                self.report([self._observation(line) for line in lines])

    def _inventory(self, running: bool) -> None:
        if not running:
            self._inventorying.clear()
            return
        self._inventorying.set()
        if self.scenario is not None and (self._player is None or self._player.done()):
            self._player = asyncio.create_task(self._play(self.scenario))

    def drop_client(self) -> None:
        """Cut the connection, like a cable pull or a reader reboot."""
        if self._client is not None:
            self._client.transport.abort()
            self._forget_client()

    def _forget_client(self) -> None:
        self._client = None
        self._inventory(False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        if self._client is not None:
            # Readers take one client; the second is told why, then disconnected.
            self.stats["refused_connections"] += 1
            writer.write(
                m.connection_attempt_event(
                    next(self._ids), self.clock_us(), REFUSED_ALREADY_CONNECTED
                )
            )
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        self._client = writer
        self.stats["connections"] += 1
        writer.write(m.connection_attempt_event(next(self._ids), self.clock_us()))
        keepalive = asyncio.create_task(self._keepalives(writer)) if self.keepalive_s else None
        try:
            while True:
                header = m.decode_header(await reader.readexactly(m.HEADER.size))
                body = await reader.readexactly(max(0, header.length - m.HEADER.size))
                if not self._answer(writer, header, body):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if keepalive is not None:
                keepalive.cancel()
            if self._client is writer:
                self._forget_client()
            writer.close()

    def _answer(self, writer: asyncio.StreamWriter, header: m.Header, body: bytes) -> bool:
        """Reply to one client message; False once the client asked to close."""
        kind = header.msg_type
        if kind == m.GET_READER_CAPABILITIES:
            self.stats["GET_READER_CAPABILITIES"] += 1
            writer.write(m.capabilities_response(header.msg_id, self.capabilities))
        elif kind == m.KEEPALIVE_ACK:
            self.stats["keepalive_acks"] += 1
        elif kind == m.ENABLE_EVENTS_AND_REPORTS:
            self.stats["ENABLE_EVENTS_AND_REPORTS"] += 1
        elif kind in m.RESPONSES:
            response, name = m.RESPONSES[kind]
            self.stats[name] += 1
            if kind == m.ADD_ROSPEC:
                try:
                    self.rospec = m.decode_add_rospec(body)
                except (ValueError, struct.error) as err:
                    writer.write(
                        m.status_response(response, header.msg_id, m.M_PARAMETER_ERROR, str(err))
                    )
                    return True
            if name in _STARTS:
                self._inventory(True)
            elif name in _STOPS:
                self._inventory(False)
            writer.write(m.status_response(response, header.msg_id))
            return kind != m.CLOSE_CONNECTION
        else:
            self.stats["unsupported_messages"] += 1
            why = f"message type {kind} is not supported by this simulator"
            writer.write(
                m.status_response(m.ERROR_MESSAGE, header.msg_id, m.M_UNSUPPORTED_MESSAGE, why)
            )
        return True

    async def _keepalives(self, writer: asyncio.StreamWriter) -> None:
        assert self.keepalive_s is not None
        while not writer.is_closing():
            await asyncio.sleep(self.keepalive_s)
            writer.write(m.keepalive(next(self._ids)))
            self.stats["keepalives"] += 1
