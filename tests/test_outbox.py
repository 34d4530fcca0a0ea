"""The durable outbox: nothing lost, per-device order kept, duplicates only after a crash.

A Hypothesis state machine drives the queue with appends, peeks, acks, releases and
crash-reopens against a model; the fault test SIGKILLs a real agent mid-stream.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pydantic import TypeAdapter

from edge_agent.agent import EdgeAgent
from edge_agent.config import GatewayConfigError, parse_gateway_config
from edge_agent.outbox import Outbox
from event_contract import DeviceState, DeviceStatus, Event, PositionEvent, new_event_id
from mqtt_client import BrokerAddress
from simulators.gps import GpsSimConfig, GpsSimulator
from tests.mqtt_helpers import wait_until
from tests.test_edge_publish import Subscriber, decode_all

REPO = Path(__file__).resolve().parent.parent
DEVICES = ("gps-1", "gps-2", "dock-1")
KINDS = ("positions", "status")
events_of: TypeAdapter[Any] = TypeAdapter(Event)


def make_event(kind: str, device: str, seq: int) -> Any:
    now = datetime.now(UTC)
    common = {
        "event_id": new_event_id(),
        "device": device,
        "seq": seq,
        "device_time": now,
        "received_at": now,
    }
    if kind == "positions":
        return PositionEvent(lat=52.0, lon=4.4, **common)
    return DeviceStatus(state=DeviceState.ONLINE, **common)


class OutboxMachine(RuleBasedStateMachine):
    """The model: which events were appended, acked, and peeked since the last (re)open."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-sm-"))
        self.path = self.dir / "outbox.sqlite"
        self.box = Outbox(self.path, max_events=None)
        self.meta: dict[Any, tuple[str, str, int]] = {}  # event_id -> (kind, device, seq)
        self.outstanding: set[Any] = set()
        self.peeked: dict[Any, int] = {}  # event_id -> rowid, this session, not acked
        self.last_seq: dict[str, int] = {}

    def teardown(self) -> None:
        self.box.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(
        kind=st.sampled_from(KINDS),
        devices=st.lists(st.sampled_from(DEVICES), min_size=1, max_size=6),
    )
    def append(self, kind: str, devices: list[str]) -> None:
        events = []
        for device in devices:
            seq = self.box.next_seq(device)
            assert seq > self.last_seq.get(device, -1), f"{device}: seq went back to {seq}"
            self.last_seq[device] = seq
            events.append(make_event(kind, device, seq))
        assert self.box.append(events) == len(events)
        for e in events:
            self.meta[e.event_id] = (kind, e.device, e.seq)
            self.outstanding.add(e.event_id)

    @rule(kind=st.sampled_from(KINDS), n=st.integers(1, 8))
    def peek(self, kind: str, n: int) -> None:
        rows = self.box.peek_batch(kind, n)
        assert len(rows) <= n
        unpeeked = {i for i in self.outstanding - set(self.peeked) if self.meta[i][0] == kind}
        if unpeeked:
            assert rows, "rows waiting but peek returned none"
        for row in rows:
            event = events_of.validate_json(row.body)
            eid = event.event_id
            assert eid in self.outstanding, "an acked event came back"
            assert eid not in self.peeked, "the same event peeked twice in one session"
            assert (row.kind, row.device, row.seq) == self.meta[eid]
            # Per-device order: it is the oldest of its device still waiting to be peeked.
            waiting = [self.meta[i][2] for i in unpeeked if self.meta[i][1] == row.device]
            assert row.seq == min(waiting), f"{row.device}: peeked {row.seq} before {waiting}"
            unpeeked.discard(eid)
            self.peeked[eid] = row.rowid

    @precondition(lambda self: bool(self.peeked))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from(sorted(self.peeked, key=str)), unique=True))
        self.box.ack([self.peeked.pop(i) for i in ids])
        self.outstanding.difference_update(ids)

    @precondition(lambda self: bool(self.peeked))
    @rule(kind=st.sampled_from(KINDS))
    def release(self, kind: str) -> None:
        """A batch the client could not queue goes back, to be peeked again first."""
        ids = [i for i in self.peeked if self.meta[i][0] == kind]
        self.box.release([self.peeked.pop(i) for i in ids], kind)

    @rule()
    def crash_and_reopen(self) -> None:
        # No ack, no checkpoint: drop the connection the way a killed process would.
        self.box._db.close()
        self.box = Outbox(self.path, max_events=None)
        self.peeked.clear()

    @invariant()
    def nothing_lost(self) -> None:
        assert self.box.depth() == len(self.outstanding)
        with sqlite3.connect(self.path) as db:
            stored = {
                events_of.validate_json(body).event_id
                for (body,) in db.execute("SELECT body FROM events")
            }
        assert stored == self.outstanding


OutboxMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_outbox_state_machine = OutboxMachine.TestCase


def test_seq_keeps_rising_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as box:
        box.append([make_event("status", "d1", box.next_seq("d1")) for _ in range(3)])
        box.next_seq("d1")  # handed out, never stored: may be handed out again, harmlessly
    with Outbox(path) as box:
        assert box.next_seq("d1") == 3
        assert box.next_seq("d2") == 0


def test_drop_oldest_is_counted_and_raises_the_alert(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_events=5, overflow="drop_oldest") as box:
        events = [make_event("status", "d1", seq) for seq in range(8)]
        assert box.append(events[:5]) == 5
        assert not box.overflowed
        assert box.append(events[5:]) == 3
        assert box.overflowed and box.dropped == 3 and box.refused == 0
        assert box.depth() == 5
        kept = [events_of.validate_json(r.body).seq for r in box.peek_batch("status", 10)]
        assert kept == [3, 4, 5, 6, 7]
        assert box.counters()["outbox_dropped"] == 3


def test_refuse_new_is_counted_and_keeps_the_oldest(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_events=4, overflow="refuse_new") as box:
        events = [make_event("status", "d1", seq) for seq in range(6)]
        assert box.append(events) == 4
        assert box.overflowed and box.refused == 2 and box.dropped == 0
        kept = [events_of.validate_json(r.body).seq for r in box.peek_batch("status", 10)]
        assert kept == [0, 1, 2, 3]


def test_overflow_counters_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path, max_events=3, overflow="drop_oldest") as box:
        box.append([make_event("status", "d1", seq) for seq in range(3)])
        box.append([make_event("status", "d1", seq) for seq in range(3, 5)])
        assert box.dropped == 2
    with Outbox(path, max_events=3, overflow="refuse_new") as box:
        # The gateway restarted (with another policy): what it lost before is still counted.
        assert box.counters()["outbox_dropped"] == 2 and not box.overflowed
        box.append([make_event("status", "d1", 5)])
        assert box.refused == 1
    with Outbox(path) as box:
        assert (box.dropped, box.refused) == (2, 1)
        assert box.depth() == 3


def test_quarantine_is_kept_across_a_restart_and_bounded(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path, max_events=4) as box:
        box.append([make_event("status", "d1", seq) for seq in range(4)])
        rows = box.peek_batch("status", 4)
        box.quarantine([r.rowid for r in rows[:3]], reason=0x87)
        box.append([make_event("status", "d1", seq) for seq in range(4, 6)])
        box.quarantine([r.rowid for r in box.peek_batch("status", 4)], reason=0x87)
        # Five refused, at most max_events kept: the oldest refusal goes, counted as dropped.
        assert box.depth() == 1 and box.quarantined() == 4 and box.dropped == 1
    with Outbox(path) as box:
        assert box.quarantined() == 4 and box.dropped == 1
        assert box.requeue_quarantined() == 4
        seqs = [events_of.validate_json(r.body).seq for r in box.peek_batch("status", 10)]
        assert seqs == [3, 1, 2, 4, 5]  # requeued behind what was waiting


def test_max_bytes_bounds_the_file(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_events=None, max_bytes=2000) as box:
        for seq in range(50):
            box.append([make_event("positions", "d1", seq)])
        assert 0 < box.size_bytes() <= 2000
        assert box.dropped == 50 - box.depth()


# -- the agent killed mid-stream ---------------------------------------------------------


class GpsInThread:
    """A GPS simulator on its own event loop, so a subprocess agent can read it."""

    def __init__(self, config: GpsSimConfig) -> None:
        self.sim = GpsSimulator(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def outbox_depth(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=5) as db:
        try:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
        except sqlite3.OperationalError:
            return 0  # the agent has not created the table yet


@pytest.mark.slow
def test_agent_sigkilled_mid_stream_loses_nothing(
    mqtt_broker: BrokerAddress, tmp_path: Path
) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    device = f"{gateway}-gps"
    box = tmp_path / "outbox.sqlite"
    config = tmp_path / "gateway.toml"
    gps = GpsInThread(GpsSimConfig(rate_hz=20, noise_m=1.0))
    config.write_text(
        f'site = "wh1"\ngateway = "{gateway}"\n'
        # A long linger keeps events in the outbox, so the kill has something to lose.
        "[publish]\nbatch_max_events = 500\nlinger_ms = 1500\n"
        f'[outbox]\npath = "{box}"\n'
        f'[[sources]]\ntype = "nmea_tcp"\ndevice = "{device}"\n'
        f'host = "127.0.0.1"\nport = {gps.sim.port}\n'
    )
    url = f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}"
    command = [sys.executable, "-m", "tracklane", "edge", "run", "--config", str(config)]
    command += ["--mqtt-url", url]
    subscriber = Subscriber(mqtt_broker, f"tracklane/v1/wh1/{gateway}/+", persistent=True)
    agents: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        agent = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        agents.append(agent)
        return agent

    try:
        first = start()
        # Something published, then a backlog waiting in the outbox: kill it now.
        wait_until(lambda: subscriber.snapshot(), timeout=20, what="the first batch")
        wait_until(lambda: outbox_depth(box) >= 10, timeout=10, what="a backlog in the outbox")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        with sqlite3.connect(box) as db:
            pending = {
                events_of.validate_json(body).event_id
                for (body,) in db.execute("SELECT body FROM events")
            }
            (seq_before,) = db.execute(
                "SELECT next_seq FROM seqs WHERE device = ?", (device,)
            ).fetchone()
        assert len(pending) >= 10
        assert not pending <= subscriber.event_ids(), "the kill should have stranded events"

        second = start()
        wait_until(
            lambda: pending <= subscriber.event_ids(), timeout=20, what="the stranded events"
        )
        wait_until(
            lambda: any(
                e.device == device and e.seq >= seq_before
                for _, e in decode_all(subscriber.snapshot())
            ),
            timeout=10,
            what="events read after the restart",
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0, second.stderr.read().decode() if second.stderr else ""
        wait_until(lambda: outbox_depth(box) == 0, timeout=5, what="an empty outbox")
        received = [e for _, e in decode_all(subscriber.snapshot()) if e.device == device]
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
                agent.wait(10)
        subscriber.close()
        gps.close()

    # Nothing lost: every seq the device ever used arrived (duplicates allowed, ingest drops
    # them), and seq went on from where the killed agent left it.
    seqs = defaultdict(int)
    for e in received:
        seqs[e.seq] += 1
    assert sorted(seqs) == list(range(max(seqs) + 1)), "a gap: an event was lost"
    assert max(seqs) >= seq_before


def test_the_outbox_section_rejects_unknown_keys_and_policies() -> None:
    base = {
        "site": "wh1",
        "gateway": "g1",
        "sources": [{"type": "nmea_tcp", "device": "d", "host": "h", "port": 1}],
    }
    config = parse_gateway_config(base | {"outbox": {"path": "/tmp/x.sqlite"}})
    assert config.outbox.overflow == "drop_oldest" and config.outbox.sync == "normal"
    with pytest.raises(GatewayConfigError, match="outbox: unknown key 'max_event'"):
        parse_gateway_config(base | {"outbox": {"max_event": 5}})
    with pytest.raises(GatewayConfigError, match=r"outbox\.overflow"):
        parse_gateway_config(base | {"outbox": {"overflow": "block"}})


def test_a_full_outbox_is_reported_once_as_the_gateway_degraded() -> None:
    config = parse_gateway_config(
        {
            "site": "wh1",
            "gateway": "g1",
            "outbox": {"max_events": 3, "overflow": "drop_oldest"},
            "sources": [{"type": "nmea_tcp", "device": "d", "host": "h", "port": 1}],
        }
    )
    agent = EdgeAgent(config, BrokerAddress("127.0.0.1", 1))
    try:
        for _ in range(10):
            agent._submit([make_event("positions", "d", agent.next_seq("d"))])
        statuses = [events_of.validate_json(r.body) for r in agent.outbox.peek_batch("status", 10)]
        assert [(s.device, s.state) for s in statuses] == [("g1", DeviceState.DEGRADED)]
        assert statuses[0].detail.startswith("gateway g1: outbox full (max_events=3")
        assert statuses[0].counters["outbox_dropped"] == 1
        assert agent.counters()["outbox_dropped"] == agent.outbox.dropped >= 7
    finally:
        agent.outbox.close()
