"""Scripted tag populations: the scenario itself, and played by the fake reader to the source."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime, timedelta

from edge_agent.config import RfidLlrpSourceConfig
from edge_agent.sources import SourceContext
from edge_agent.sources.rfid_llrp import RfidLlrpSource
from edge_agent.sources.rfid_smoothing import RfidSmoother, SmoothingConfig, TagRead
from event_contract import ScanEvent
from identifiers.epc import DecodedEpc, decode_epc
from simulators.llrp_reader import FakeLlrpReader
from simulators.tag_population import ScenarioConfig, TagScenario, sgtin96, sscc96

FLOOR = -72.0  # between the strays (below -76) and the field's edge (-66)
BUSY = ScenarioConfig(doors=3, tags_per_minute=240, duration_s=3.0, seed=7)


def test_epcs_are_the_gs1_schemes_they_claim():
    assert sgtin96(812345, 6789) == "3034257BF7194E4000001A85"
    assert decode_epc(sgtin96(812345, 6789)).epc_uri == "urn:epc:id:sgtin:0614141.812345.6789"
    assert decode_epc(sscc96(1234567890)).epc_uri == "urn:epc:id:sscc:0614141.1234567890"


def test_a_scenario_is_deterministic_by_seed_and_lazy_windows_add_up():
    a, b = TagScenario(BUSY), TagScenario(BUSY)
    assert a.reads(0, 3) == b.reads(0, 3)
    assert a.reads(0, 1.3) + a.reads(1.3, 3) == a.reads(0, 3)
    other = TagScenario(ScenarioConfig(doors=3, tags_per_minute=240, duration_s=3.0, seed=8))
    assert other.reads(0, 3) != a.reads(0, 3)
    assert a.reads(3, 10) == []  # the scenario is over


def test_each_pass_rises_and_falls_at_its_door_with_weaker_cross_reads_and_noise():
    scenario = TagScenario(BUSY)
    passes = list(scenario.passes(0, 3))
    assert len(passes) >= 8 and len({p.epc for p in passes}) == len(passes)
    schemes = {decode_epc(p.epc).scheme for p in passes}  # type: ignore[union-attr]
    assert schemes == {"sgtin-96", "sscc-96"}
    reads = scenario.reads(0, 3)
    cross = missed = 0
    for p in passes:
        own = [r for r in reads if r.epc == p.epc and r.antenna == p.antenna]
        others = [r for r in reads if r.epc == p.epc and r.antenna != p.antenna]
        assert p.start_s <= own[0].t_s and own[-1].t_s <= p.end_s
        peak = max(range(len(own)), key=lambda i: own[i].rssi_dbm)
        assert own[0].rssi_dbm < own[peak].rssi_dbm - 10 > own[-1].rssi_dbm  # rises, falls
        assert 0.7 * 20 <= len(own) <= 20  # about 20 reads a second
        missed += 20 - len(own)
        assert all(abs(r.antenna - p.antenna) == 1 for r in others)  # neighbours only
        assert all(r.rssi_dbm < own[peak].rssi_dbm - 8 for r in others)
        cross += sum(r.rssi_dbm >= FLOOR for r in others)
    assert missed > 0
    assert cross > 0, "some cross-reads must get past the floor, or suppression is untested"
    truth = {p.epc for p in passes}
    strays = [r for r in reads if r.epc not in truth]
    assert len(strays) >= 5 and all(r.rssi_dbm < -76 for r in strays)


def test_smoothing_the_scenario_recovers_the_ground_truth():
    scenario = TagScenario(BUSY)
    smoother = RfidSmoother(SmoothingConfig(timedelta(seconds=0.5), rssi_floor_dbm=FLOOR))
    base = datetime(2026, 11, 1, tzinfo=UTC)
    scans = []
    for r in scenario.reads(0, 3):
        door = f"door-{r.antenna}"
        at = base + timedelta(seconds=r.t_s)
        scans += smoother.feed(TagRead(r.epc, door, r.antenna, r.rssi_dbm, at))
        scans += smoother.poll(at)
    scans += smoother.flush()
    assert sorted((s.epc, s.read_point) for s in scans) == sorted(scenario.expected())
    assert smoother.stats["cross_reads_suppressed"] > 0
    assert smoother.stats["reads_below_floor"] > 0


def _context() -> SourceContext:
    seqs = itertools.count(1)

    async def report(*_args: object) -> None:
        pass

    return SourceContext(
        site="dc-1", gateway="gw-1", next_seq=lambda _d: next(seqs), report_state=report
    )


def test_the_fake_reader_plays_a_scenario_through_sllurp_into_one_scan_per_pass():
    scenario = TagScenario(BUSY)
    expected = sorted(scenario.expected())

    async def run() -> tuple[list[ScanEvent], dict[str, float], dict[str, int]]:
        async with FakeLlrpReader(scenario=scenario, report_interval_s=0.1) as fake:
            config = RfidLlrpSourceConfig.model_validate(
                {
                    "type": "rfid_llrp",
                    "device": "dock-reader",
                    "host": "127.0.0.1",
                    "port": fake.port,
                    "antennas": [
                        {"antenna": n, "read_point": {"door": f"door-{n}"}} for n in (1, 2, 3)
                    ],
                    "smoothing": {"window_s": 1.0, "rssi_floor_dbm": FLOOR},
                }
            )
            source = RfidLlrpSource(config, _context(), poll_interval_s=0.05)
            events: list[ScanEvent] = []
            all_in = asyncio.Event()

            async def consume() -> None:
                async for event in source:
                    assert isinstance(event, ScanEvent)
                    events.append(event)
                    if len(events) >= len(expected):
                        all_in.set()

            task = asyncio.create_task(consume())
            try:
                async with asyncio.timeout(20):
                    await all_in.wait()
                await asyncio.sleep(1.5)  # a late duplicate or a stray would show up now
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            return events, source.counters(), dict(fake.stats)

    events, counters, stats = asyncio.run(run())
    got = sorted((e.code, e.read_point.door) for e in events)
    assert got == expected
    assert all(isinstance(decode_epc(e.code), DecodedEpc) for e in events)
    assert counters["cross_reads_suppressed"] > 0 and counters["reads_below_floor"] > 0
    assert stats["reports"] > 10


def test_a_carried_tag_is_read_at_its_door_when_the_script_says() -> None:
    scenario = TagScenario(ScenarioConfig(doors=2, tags_per_minute=0.01, seed=3, noise_per_s=0))
    p = scenario.carry("3114257bf4499602d2000000", door=1, start_s=10.0)
    reads = [r for r in scenario.reads(9.0, 12.0) if r.epc == p.epc]
    assert reads and min(r.t_s for r in reads) >= 10.0 and max(r.t_s for r in reads) < 11.0
    strongest = max(reads, key=lambda r: r.rssi_dbm)
    assert strongest.antenna == 2  # door index 1 is antenna 2
    assert not [r for r in scenario.reads(0.0, 9.0) if r.epc == p.epc]
