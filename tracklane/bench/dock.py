"""`tracklane bench dock`: scans matched to orders per second, and scan-to-verdict latency.

One box, as `bench ingest`: a private Mosquitto, an embedded PostgreSQL (or a scratch database
on TRACKLANE_BENCH_DATABASE_URL's server), and `--workers` ingest processes sharing the
subscription. The database holds `--packages` packages in orders of two, planned on one trip
whose dispatch door is assigned. Then:

- **throughput**: every package is scanned once at a pack station, published as gateways
  publish (batches of up to 200 scans from ten gateways), all at once; the clock runs from
  the first publish to the last verdict received on the gateways' feedback topics.
- **latency**: then `--paced` packages are loaded at the dispatch door, one scan per message
  at `--rate` scans/s, as a dock scanner sends them; each scan's latency is from its publish
  to its verdict arriving back at the gateway's side of the broker. (A real gateway adds its
  publish linger, `publish.linger_ms` in its config, before the publish.)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from event_contract import CodeKind, ReadPoint, ScanEvent, Stage, encode, event_topic, new_event_id
from ingest_service.storage.migrate import migrate
from mqtt_client import make_client, parse_mqtt_url
from orders.codes import make_sscc
from simulators import synthetic
from tracklane.bench.ingest import _scratch_database
from tracklane.embedded import EmbeddedBroker, EmbeddedPostgres

SITE, PREFIX, TRIP, DOOR = "bench", "0614141", "T-BENCH", "door-1"
GATEWAYS = [f"dock-{n}" for n in range(10)]


def run_dock_bench(*, packages: int, paced: int, rate: int, workers: int) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="tracklane-bench-dock-"))
    pg = None
    try:
        server_url = os.environ.get("TRACKLANE_BENCH_DATABASE_URL")
        if not server_url:
            pg = EmbeddedPostgres(workdir / "pg", delete_on_stop=True).start()
            server_url = pg.url()
        with (
            _scratch_database(server_url) as database_url,
            EmbeddedBroker(workdir / "mosquitto") as broker,
        ):
            migrate(database_url)
            ssccs = _seed(database_url, packages)
            print(f"bench: {packages} packages in {packages // 2} orders", file=sys.stderr)
            figures = _measure(broker, database_url, ssccs, paced, rate, workers, workdir)
        return {"packages": packages, "ingest_workers": workers, **figures,
                "cpus": os.cpu_count() or 0}  # fmt: skip
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _seed(database_url: str, packages: int) -> list[str]:
    ssccs = [make_sscc(PREFIX, n) for n in range(packages)]
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO customers (ref, name) VALUES ('C-BENCH', 'Bench customer')")
        conn.execute("INSERT INTO trips (id, origin_site) VALUES (%s, %s)", (TRIP, SITE))
        conn.execute("INSERT INTO dock_doors (site, door, trip_id) VALUES (%s, %s, %s)",
                     (SITE, DOOR, TRIP))  # fmt: skip
        conn.execute(
            "INSERT INTO orders (number, customer_id, dest_address, trip_id, created_by)"
            " SELECT 'B-' || n, 1, 'x', %s, 'bench' FROM generate_series(0, %s) n",
            (TRIP, packages // 2),
        )
        with conn.cursor().copy("COPY packages (order_id, sscc) FROM STDIN") as copy:
            for n, sscc in enumerate(ssccs):
                copy.write_row((n // 2 + 1, sscc))
    return ssccs


def _scan(sscc: str, gateway: str, stage: Stage) -> ScanEvent:
    now = datetime.now(UTC)
    read_point = (ReadPoint(site=SITE, door=DOOR) if stage is Stage.DISPATCH
                  else ReadPoint(site=SITE, station=gateway))  # fmt: skip
    return ScanEvent(
        event_id=new_event_id(), device="scanner", seq=time.time_ns() // 1000, device_time=now,
        received_at=now, code=f"00{sscc}", code_kind=CodeKind.BARCODE, symbology="gs1-128",
        read_point=read_point, stage=stage,
    )  # fmt: skip


class Verdicts:
    """The gateways' side of the feedback topics: when each scan's verdict arrived."""

    def __init__(self, broker_url: str) -> None:
        self.arrived: dict[str, float] = {}
        self.kinds: dict[str, int] = {}
        self.lock = threading.Lock()
        self.client, props = make_client(parse_mqtt_url(broker_url), f"bench-fb-{uuid.uuid4()}")
        ready = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.connect("127.0.0.1", parse_mqtt_url(broker_url).port, properties=props)
        self.client.loop_start()
        self.client.subscribe(f"tracklane/v1/{SITE}/+/feedback", qos=1)
        ready.wait(10)

    def _on_message(self, _c, _u, msg) -> None:
        verdict = json.loads(msg.payload)
        with self.lock:
            self.arrived[verdict["event_id"]] = time.time()
            self.kinds[verdict["verdict"]] = self.kinds.get(verdict["verdict"], 0) + 1

    def wait_for(self, count: int, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.arrived) >= count:
                    return max(self.arrived.values())
            time.sleep(0.05)
        raise RuntimeError(f"{len(self.arrived)} of {count} verdicts within {timeout}s")


def _measure(broker, database_url, ssccs, paced, rate, workers, workdir) -> dict[str, float]:
    group = f"bench{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "TRACKLANE_DATABASE_URL": database_url, "TRACKLANE_MQTT_URL": broker.url,
           "TRACKLANE_INGEST_SHARE_GROUP": group, "TRACKLANE_DATA_DIR": str(workdir / "data"),
           "TRACKLANE_LOG_LEVEL": "WARNING"}  # fmt: skip
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tracklane", "serve", "--no-api", "--no-migrate"],
        env={**env, "TRACKLANE_INGEST_CLIENT_ID": f"ingest-{group}-{n}"},
    ) for n in range(workers)]  # fmt: skip
    verdicts = Verdicts(broker.url)
    client, props = make_client(parse_mqtt_url(broker.url), f"bench-pub-{group}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker.port, properties=props)
    client.loop_start()
    try:
        # Warm-up: probe scans until one comes back judged: ingest is subscribed and ready.
        probe = ssccs[-1]
        topic = event_topic(SITE, GATEWAYS[0], "scans")
        deadline = time.monotonic() + 60
        while not verdicts.arrived:
            if time.monotonic() > deadline:
                raise RuntimeError("ingest did not answer a scan within a minute; see its log")
            _publish(client, [(topic, [_scan(probe, GATEWAYS[0], Stage.PICK)])])
            time.sleep(0.5)
        time.sleep(1.0 if workers > 1 else 0)
        probes = len(verdicts.arrived)
        burst = ssccs[: len(ssccs) - paced - 1]
        messages = []
        for g, gateway in enumerate(GATEWAYS):
            mine = [_scan(s, gateway, Stage.PACK) for s in burst[g :: len(GATEWAYS)]]
            for i in range(0, len(mine), 200):
                messages.append((event_topic(SITE, gateway, "scans"), mine[i : i + 200]))
        started = time.time()
        _publish(client, messages)
        finished = verdicts.wait_for(probes + len(burst))
        elapsed = finished - started
        sent: dict[str, float] = {}
        gap = 1.0 / rate
        next_at = time.monotonic()
        for i, sscc in enumerate(ssccs[len(burst) : len(burst) + paced]):
            next_at += gap
            time.sleep(max(0.0, next_at - time.monotonic()))
            gateway = GATEWAYS[i % len(GATEWAYS)]
            event = _scan(sscc, gateway, Stage.DISPATCH)
            sent[str(event.event_id)] = time.time()
            _publish(client, [(event_topic(SITE, gateway, "scans"), [event])], wait=False)
        verdicts.wait_for(probes + len(burst) + paced)
    finally:
        client.disconnect()
        client.loop_stop()
        verdicts.client.disconnect()
        verdicts.client.loop_stop()
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    latencies = sorted((verdicts.arrived[e] - t) * 1000 for e, t in sent.items())
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    with psycopg.connect(database_url) as conn:
        (loaded,) = conn.execute("SELECT count(*) FROM packages WHERE loaded_trip = %s",
                                 (TRIP,)).fetchone()  # type: ignore[misc]  # fmt: skip
    return {
        "scans_matched": len(burst),
        "scans_per_s": round(len(burst) / elapsed),
        "elapsed_s": round(elapsed, 2),
        "verdict_p50_ms": round(cuts[49], 1),
        "verdict_p99_ms": round(cuts[98], 1),
        "verdict_rate_per_s": rate,
        "paced_loaded": int(loaded),
        "verdicts": dict(sorted(verdicts.kinds.items())),
    }


def _publish(client, messages, *, wait: bool = True) -> None:
    infos = []
    for topic, events in messages:
        batch = next(synthetic.batches(events, site=SITE, gateway=topic.split("/")[3],
                                       size=len(events)))  # fmt: skip
        infos.append(client.publish(topic, encode(batch), qos=1))
    if wait:
        for info in infos:
            info.wait_for_publish(60)
