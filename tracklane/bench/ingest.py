"""`tracklane bench ingest`: events/s from broker to committed rows, beside the raw limits.

Everything runs on this machine, as in a one-box install: a private Mosquitto, an embedded
PostgreSQL (or a scratch database on the server that TRACKLANE_BENCH_DATABASE_URL names),
and `tracklane serve --no-api` processes (`--workers`, default 2, one per core) sharing the
subscription as production would. The same pre-encoded batches are then pushed through
Mosquitto's own C clients (`mosquitto_pub`/`mosquitto_sub`) and the same rows through a bare
COPY, so the figures say how close ingest comes to what the parts underneath can do.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from event_contract import encode, event_topic
from ingest_service.storage.migrate import migrate
from ingest_service.storage.writer import TABLES
from mqtt_client import make_client, parse_mqtt_url
from simulators import synthetic
from tracklane.embedded import EmbeddedBroker, EmbeddedPostgres

SITE, GATEWAY = "bench", "bench-gw"


def run_ingest_bench(
    *, events: int, batch: int, rate: int, workers: int = 2
) -> dict[str, float | int]:
    workdir = Path(tempfile.mkdtemp(prefix="tracklane-bench-"))
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
            payloads = _payloads(events, batch, "burst-")
            paced = _payloads(min(events, rate * 10), batch, "paced-")
            print(f"bench: {events} events in {len(payloads)} messages of {batch}", file=sys.stderr)
            broker_limit = _broker_limit(broker, [p for _, p in payloads], workdir)
            copy_limit = _copy_limit(database_url, events)
            figures = _through_ingest(
                broker, database_url, payloads, paced, rate, workdir, ingest_workers=workers
            )
        return {
            "events": events,
            "batch": batch,
            "ingest_workers": workers,
            **figures,
            "broker_limit_msgs_per_s": round(broker_limit),
            "broker_limit_events_per_s": round(broker_limit * batch),
            "copy_limit_rows_per_s": round(copy_limit),
            "cpus": os.cpu_count() or 0,
        }
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _payloads(events: int, batch: int, prefix: str) -> list[tuple[str, bytes]]:
    """One device per batch, so each batch's commit time can be read back by device."""
    topic = event_topic(SITE, GATEWAY, "positions")
    out = []
    for index, start in enumerate(range(0, events, batch)):
        chunk = synthetic.positions(
            site=SITE, gateway=GATEWAY, device=f"{prefix}{index}", count=min(batch, events - start)
        )
        out.append((topic, encode(next(synthetic.batches(chunk, site=SITE, gateway=GATEWAY,
                                                         size=batch)))))  # fmt: skip
    return out


def _broker_limit(broker: EmbeddedBroker, payloads: list[bytes], workdir: Path) -> float:
    """Messages/s from mosquitto_pub to mosquitto_sub at QoS 1, same payloads."""
    lines = workdir / "payloads.txt"
    lines.write_bytes(b"\n".join(payloads) + b"\n")
    common = ["-h", "127.0.0.1", "-p", str(broker.port), "-t", "bench/raw", "-q", "1"]
    sub = subprocess.Popen(
        ["mosquitto_sub", *common, "-C", str(len(payloads)), "-V", "mqttv5"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let the subscription land before the first message
    started = time.perf_counter()
    with lines.open("rb") as stdin:
        subprocess.run(["mosquitto_pub", *common, "-l", "-V", "mqttv5"], stdin=stdin, check=True)
    sub.wait(120)
    return len(payloads) / (time.perf_counter() - started)


def _copy_limit(database_url: str, rows: int) -> float:
    """Rows/s of a bare COPY of the same rows into a copy of the positions table."""
    table = TABLES["position"]
    sample = synthetic.positions(site=SITE, gateway=GATEWAY, device="copy", count=rows)
    buf = io.StringIO()
    for event in sample:
        row = table.row(SITE, GATEWAY, event)
        buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    data = buf.getvalue().encode()
    cols = ", ".join(table.column_names)
    with psycopg.connect(database_url) as conn:
        # A real (logged) table with the same indexes, as ingest writes to; not a TEMP one,
        # which skips the WAL and would flatter the limit.
        conn.execute("CREATE TABLE copy_limit (LIKE positions INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY copy_limit ({cols}) FROM STDIN") as copy:
            for i in range(0, len(data), 1 << 20):
                copy.write(data[i : i + (1 << 20)])
        conn.commit()
        return rows / (time.perf_counter() - started)


@contextmanager
def _scratch_database(server_url: str) -> Iterator[str]:
    """A database of the bench's own on the server, dropped afterwards: never touch data."""
    name = f"tracklane_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(server_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _through_ingest(
    broker: EmbeddedBroker,
    database_url: str,
    burst: list[tuple[str, bytes]],
    paced: list[tuple[str, bytes]],
    rate: int,
    workdir: Path,
    ingest_workers: int,
) -> dict[str, float]:
    """Throughput from a burst of everything at once; latency from a run paced at `rate`."""
    group = f"bench{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "TRACKLANE_DATABASE_URL": database_url,
        "TRACKLANE_MQTT_URL": broker.url,
        "TRACKLANE_INGEST_CLIENT_ID": f"ingest-{group}",
        "TRACKLANE_INGEST_SHARE_GROUP": group,
        "TRACKLANE_DATA_DIR": str(workdir / "data"),
        "TRACKLANE_LOG_LEVEL": "WARNING",
    }
    # Each worker is its own process with its own session in the one share group, as in
    # production; the broker splits the messages between them.
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tracklane", "serve", "--no-api", "--no-migrate"],
            env={**env, "TRACKLANE_INGEST_CLIENT_ID": f"ingest-{group}-{n}"},
        )
        for n in range(ingest_workers)
    ]
    client, props = make_client(parse_mqtt_url(broker.url), f"bench-pub-{group}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker.port, properties=props)
    client.loop_start()
    try:
        _wait_subscribed(client, database_url, burst[0][0])
        time.sleep(1.0 if ingest_workers > 1 else 0)  # the other workers subscribe too
        first = time.time()
        _publish(client, burst, interval=0.0)
        commits = _wait_stored(database_url, "burst-", len(burst))
        sent_at = _publish(client, paced, interval=payloads_events(paced[0][1]) / rate)
        paced_commits = _wait_stored(database_url, "paced-", len(paced))
    finally:
        client.disconnect()
        client.loop_stop()
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
    total = sum(payloads_events(p) for _, p in burst)
    elapsed = max(commits.values()) - first
    latencies = sorted((paced_commits[d] - sent_at[d]) * 1000 for d in sent_at)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "events_per_s": round(total / elapsed),
        "elapsed_s": round(elapsed, 2),
        "p50_ms": round(cuts[49], 1),
        "p99_ms": round(cuts[98], 1),
        "latency_at_events_per_s": rate,
    }


def _publish(client, payloads: list[tuple[str, bytes]], *, interval: float) -> dict[str, float]:
    """Publish QoS 1 (every `interval` seconds, or at once); return each device's send time."""
    sent_at: dict[str, float] = {}
    infos = []
    next_at = time.monotonic()
    for index, (topic, payload) in enumerate(payloads):
        if interval:
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        sent_at[f"{'paced' if interval else 'burst'}-{index}"] = time.time()
        infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    return sent_at


def payloads_events(payload: bytes) -> int:
    return payload.count(b'"event_id"')


def _wait_subscribed(client, database_url: str, topic: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = synthetic.positions(site=SITE, gateway=GATEWAY, device="probe", count=1)
        client.publish(topic, encode(next(synthetic.batches(probe, site=SITE, gateway=GATEWAY,
                                                            size=1))), qos=1)  # fmt: skip
        time.sleep(0.3)
        with psycopg.connect(database_url) as conn:
            if conn.execute("SELECT 1 FROM positions WHERE device = 'probe' LIMIT 1").fetchone():
                return
    raise RuntimeError("ingest did not subscribe within a minute; see its log above")


def _wait_stored(
    database_url: str, prefix: str, batches: int, timeout: float = 600
) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    query = (
        "SELECT device, extract(epoch FROM max(ingested_at)) FROM positions"
        " WHERE device LIKE %s GROUP BY device"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(query, (f"{prefix}%",)).fetchall()
            if len(rows) >= batches:
                return {device: float(ts) for device, ts in rows}
            time.sleep(0.2)
    raise RuntimeError(f"ingest stored {len(rows)} of {batches} batches within {timeout}s")
