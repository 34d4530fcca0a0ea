"""`tracklane bench live`: vehicle positions fanned out to WebSocket clients (docs/live-map.md).

One box, as the other benches: an embedded PostgreSQL (or a scratch database on the server
that `--database-url` or TRACKLANE_BENCH_DATABASE_URL names), migrated, with `--vehicles`
vehicles spread uniformly over a 2 deg x 2 deg region around Brussels (every tenth on a
departed trip, so the trigger's trip lookup finds some). Then, each in its own process:

- **the API**: `tracklane serve --no-ingest --no-migrate`, the production process without
  ingest (one uvicorn worker), so its CPU is read alone from /proc/<pid>/stat;
- **the feeder** (`live_procs.feed`): moves every vehicle once per 1/`--rate` s in batches of
  about 1,000 vehicles, one `UPDATE vehicle_state ... FROM unnest(...)` per batch in its own
  transaction, spread evenly over the second, so the statement-level trigger notifies as it
  does under ingest;
- **the clients** (`live_procs.run_clients`, two processes): `--clients` WebSockets that
  log in with a viewer's session token (first message) and subscribe `streams: ["vehicles"]`
  with a viewport of their own: a random rectangle covering 5-15 % of the region (aspect
  0.5-2), so ~10 % of all updates reach each client.

After `--warmup` seconds the window of `--seconds` starts. An item's latency is its receive
time in the client minus its `at` (the trigger's clock_timestamp(), same clock): it spans
the trigger, the commit, NOTIFY, the API's listener and hub, the 50 ms flush pacing, the
socket and the client's own parsing. `server_p99_ms` is the frame's `sent_at` minus `at`:
the share spent before the server wrote the frame. Every item is checked against its
client's bbox (`outside_bbox` must be 0), and the feeder counts for each update how many
bboxes hold the new position, so `delivery_ratio` (items received / items due) shows loss;
coalescing only drops a position overtaken by a newer one, which at 1 Hz should be rare.
CPU figures are % of one core over the window (the machine's `cpus` cores are shared by
the database, the API, the feeder and the clients; `other_cpu_pct` is whatever else ran on
the machine meanwhile, which makes a run worthless when high). `api_us_per_item` is the API's
CPU per item delivered, the figure to size API processes with. `notify_queue_usage` is
PostgreSQL's notification queue at the window's start and end: it grows when the listener
falls behind, a backlog that no per-client coalescing can shorten. The clients offer
permessage-deflate as browsers do; the server declines it (`tracklane/serve.py`: it doubled
the API's CPU per item and cost the latency target), and `compression=False` skips the offer.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import queue
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg

from ingest_service.storage.migrate import migrate
from tracklane.bench.ingest import _scratch_database
from tracklane.embedded import EmbeddedPostgres

REGION = (3.35, 49.85, 5.35, 51.85)  # west, south, east, north
VIEWPORT_SHARE = (0.05, 0.15)  # of the region's area, per client
ROWS_PER_STATEMENT = 1_000
METRICS = ("tracklane_live_frames_sent_total", "tracklane_live_items_coalesced_total",
           "tracklane_live_items_dropped_total", "tracklane_live_clients")  # fmt: skip
CLK_TCK = os.sysconf("SC_CLK_TCK")


def run_live_bench(
    *,
    vehicles: int = 10_000,
    clients: int = 100,
    seconds: float = 30.0,
    rate: float = 1.0,
    warmup: float = 5.0,
    database_url: str | None = None,
    client_procs: int = 2,
    compression: bool = True,
    seed: int = 1,
) -> dict[str, Any]:
    """Run the bench; `database_url` names a server where a scratch database is made."""
    workdir = Path(tempfile.mkdtemp(prefix="tracklane-bench-live-"))
    pg = None
    rng = np.random.default_rng(seed)
    try:
        server_url = database_url or os.environ.get("TRACKLANE_BENCH_DATABASE_URL")
        if not server_url:
            pg = EmbeddedPostgres(workdir / "pg", delete_on_stop=True).start()
            server_url = pg.url()
        with _scratch_database(server_url) as url:
            migrate(url)
            _seed(url, vehicles, rng)
            bboxes = viewports(clients, rng)
            _say(f"{vehicles} vehicles at {rate} Hz, {clients} clients, {seconds} s")
            with _api(url, workdir) as (pid, base):
                token = _viewer_token(url, base)
                figures = _measure(
                    url, base, pid, token, bboxes, workdir,
                    rate=rate, warmup=warmup, seconds=seconds, client_procs=client_procs,
                    compression=compression,
                    seed=seed,
                )  # fmt: skip
        return {"vehicles": vehicles, "clients": clients, "rate_hz": rate, "seconds": seconds,
                **figures}  # fmt: skip
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def viewports(count: int, rng: np.random.Generator) -> list[list[float]]:
    """`count` random [w, s, e, n] rectangles inside REGION, each 5-15 % of its area."""
    west, south, east, north = REGION
    width, height = east - west, north - south
    out = []
    for _ in range(count):
        area = rng.uniform(*VIEWPORT_SHARE) * width * height
        aspect = rng.uniform(0.5, 2.0)
        w = min(width, math.sqrt(area * aspect))
        h = min(height, area / w)
        x, y = rng.uniform(west, east - w), rng.uniform(south, north - h)
        out.append([round(x, 6), round(y, 6), round(x + w, 6), round(y + h, 6)])
    return out


def _say(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def _seed(url: str, vehicles: int, rng: np.random.Generator) -> None:
    west, south, east, north = REGION
    ids = [f"v{n:06d}" for n in range(vehicles)]
    lat = rng.uniform(south, north, vehicles).tolist()
    lon = rng.uniform(west, east, vehicles).tolist()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO vehicles (id, name, plate) SELECT v, 'Truck ' || v, upper(v)"
            " FROM unnest(%s::text[]) AS v",
            (ids,),
        )
        conn.execute(
            "INSERT INTO trips (id, vehicle_id, origin_site, state, departed_at)"
            " SELECT 'T-' || v, v, 'bench', 'departed', now() FROM unnest(%s::text[]) AS v",
            (ids[::10],),
        )
        conn.execute(
            "INSERT INTO vehicle_state (vehicle_id, last_fix_at, lat, lon, speed_mps, heading_deg)"
            " SELECT v, now(), la, lo, 0, 0 FROM unnest(%s::text[], %s::float8[], %s::float8[])"
            " AS u(v, la, lo)",
            (ids, lat, lon),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE vehicles, trips, vehicle_state")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _api(url: str, workdir: Path) -> Iterator[tuple[int, str]]:
    """`tracklane serve` without ingest, in its own process; yields its pid and base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "TRACKLANE_DATABASE_URL": url,
        "TRACKLANE_API_HOST": "127.0.0.1",
        "TRACKLANE_SECRET_KEY": secrets.token_urlsafe(32),
        "TRACKLANE_MODE": "dev",
        "TRACKLANE_DATA_DIR": str(workdir / "data"),
        "TRACKLANE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracklane", "serve", "--no-ingest", "--no-migrate",
         "--port", str(port)], env=env, cwd=workdir,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited with {proc.returncode}; see its log above")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not answer /healthz within a minute")
            time.sleep(0.2)
        yield proc.pid, base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _viewer_token(url: str, base: str) -> str:
    """A viewer user made for the run, logged in through the API: its session token."""
    from ingest_service.auth.roles import Role
    from ingest_service.auth.users import create_user

    username, password = f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24)

    async def create() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await create_user(conn, username=username, password=password, role=Role.VIEWER)

    asyncio.run(create())
    answer = httpx.post(f"{base}/api/v1/auth/login", timeout=30,
                        json={"username": username, "password": password})  # fmt: skip
    answer.raise_for_status()
    return answer.json()["access_token"]


class _Child:
    """A `live_procs` process: config on stdin, JSON lines back on stdout."""

    def __init__(self, role: str, cfg: dict[str, Any]) -> None:
        self.role = role
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracklane.bench.live_procs", role],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.send(cfg)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(
                f"the {self.role} process did not answer in {timeout:.0f} s"
            ) from None
        msg = json.loads(line) if line.strip() else {"error": "exited without a word"}
        if "error" in msg:
            raise RuntimeError(f"the {self.role} process failed: {msg['error']}")
        return msg

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def _measure(url, base, api_pid, token, bboxes, workdir, *, rate, warmup, seconds,
             client_procs, compression, seed) -> dict[str, Any]:  # fmt: skip
    ws_url = base.replace("http://", "ws://") + "/api/v1/live"
    procs = max(1, min(client_procs, len(bboxes)))
    children: list[_Child] = []
    try:
        for n in range(procs):
            cfg = {"url": ws_url, "token": token, "bboxes": bboxes[n::procs],
                   "out": str(workdir / f"clients{n}"), "compression": compression}  # fmt: skip
            children.append(_Child("clients", cfg))
        for child in children:
            child.answer(180)
        feed = {
            "database_url": url,
            "region": REGION,
            "rate": rate,
            "batches": math.ceil(_count(url) / ROWS_PER_STATEMENT),
            "bboxes": bboxes,
            "seed": seed,
        }
        feeder = _Child("feed", feed)
        children.append(feeder)
        feeder.answer(60)
        _say(f"{len(bboxes)} clients subscribed; feeding; warm-up {warmup} s")
        t0 = time.time() + warmup
        t1 = t0 + seconds
        for child in children:
            child.send({"t0": t0, "t1": t1})
        pids = {"api": [api_pid], "feeder": [feeder.proc.pid],
                "clients": [c.proc.pid for c in children[:-1]]}  # fmt: skip
        postmaster = _postmaster(url)
        time.sleep(max(0.0, t0 - time.time()))
        before = _cpu_sample(pids, postmaster)
        metrics0, rss0, queue0 = _metrics(base, token), _rss_mb(api_pid), _notify_queue(url)
        time.sleep(max(0.0, t1 - time.time()))
        after = _cpu_sample(pids, postmaster)
        metrics1, rss1, queue1 = _metrics(base, token), _rss_mb(api_pid), _notify_queue(url)
        _say("window over; collecting the clients' figures")
        results = [child.answer(seconds + 120) for child in children]
    finally:
        for child in children:
            child.stop()
    fed, got = results[-1], results[:-1]
    cpu = _cpu_pct(before, after)
    latency = np.concatenate([np.load(workdir / f"clients{n}.latency.npy") for n in range(procs)])
    server = np.concatenate([np.load(workdir / f"clients{n}.server.npy") for n in range(procs)])
    items = sum(r["items"] for r in got)
    per_client = sorted(p for r in got for p in r["per_client_p99_ms"])

    def pct(values: np.ndarray, q: float) -> float | None:
        return round(float(np.percentile(values, q)), 1) if len(values) else None

    figures: dict[str, Any] = {
        "p50_ms": pct(latency, 50),
        "p90_ms": pct(latency, 90),
        "p99_ms": pct(latency, 99),
        "p999_ms": pct(latency, 99.9),
        "max_item_age_ms": pct(latency, 100),
        "server_p50_ms": pct(server, 50),
        "server_p99_ms": pct(server, 99),
        "worst_client_p99_ms": round(per_client[-1], 1) if per_client else None,
        "updates_per_s": round(fed["updates"] / seconds),
        "items_per_s": round(items / seconds),
        "expected_items_per_s": round(fed["expected_items"] / seconds),
        "delivery_ratio": round(items / fed["expected_items"], 4)
        if fed["expected_items"]
        else None,
        "frames_per_s": round(sum(r["frames"] for r in got) / seconds),
        "outside_bbox": sum(r["outside_bbox"] for r in got),
        "clients_without_items": sum(r["clients_without_items"] for r in got),
        "api_cpu_pct": cpu["api"],
        # the API's CPU per item delivered (frames, filtering and the listener included)
        "api_us_per_item": round(cpu["api"] * 1e4 / (items / seconds), 1) if items else None,
        "postgres_cpu_pct": cpu["postgres"],
        "feeder_cpu_pct": cpu["feeder"],
        "clients_cpu_pct": cpu["clients"],
        "clients_us_per_item": round(cpu["clients"] * 1e4 / (items / seconds), 1)
        if items
        else None,
        "machine_cpu_pct": cpu["machine"],
        "other_cpu_pct": cpu["other"],
        "api_rss_mb": [rss0, rss1],
        "statement_p99_ms": fed["statement_p99_ms"],
        "feeder_max_behind_ms": fed["max_behind_schedule_ms"],
        "notify_queue_usage": [queue0, queue1],
        # counters: the window's increase; gauges: at the window's start
        "server_metrics": {
            k: v - metrics0.get(k, 0) if k.endswith("_total") else metrics0.get(k, v)
            for k, v in metrics1.items()
        },
        "other_messages": _merge(r["other_messages"] for r in got),
        "closed_early": _merge(r["closed_early"] for r in got),
        "compression": sorted({c or "none" for r in got for c in r["compression"]}),
        "cpus": os.cpu_count() or 0,
    }
    if figures["outside_bbox"]:
        figures["outside_example"] = next(r["outside_example"] for r in got if r["outside_example"])
    _report(figures)
    return figures


def _notify_queue(url: str) -> float:
    """The share of PostgreSQL's notification queue in use: grows while a listener lags."""
    with psycopg.connect(url) as conn:
        (usage,) = conn.execute("SELECT pg_notification_queue_usage()").fetchone()  # type: ignore[misc]
    return float(usage)


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        (n,) = conn.execute("SELECT count(*) FROM vehicle_state").fetchone()  # type: ignore[misc]
    return int(n)


def _merge(dicts: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (index 0 is field 3, the state)."""
    text = _read(Path(f"/proc/{pid}/stat"))
    return text.rsplit(")", 1)[1].split() if text else []


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields else 0.0


def _postmaster(url: str) -> int | None:
    """The database server's postmaster pid when it runs on this machine, else None."""
    with psycopg.connect(url) as conn:
        (backend,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        fields = _stat(backend)
        if fields and _read(Path(f"/proc/{backend}/comm")) == "postgres":
            return int(fields[1])
    return None


def _cpu_sample(pids: dict[str, list[int]], postmaster: int | None) -> dict[str, Any]:
    """CPU seconds so far of each group and of the database server's processes (by pid, as
    backends come and go), the machine's busy seconds (all cores) and the wall time."""
    out: dict[str, Any] = {n: sum(_cpu_seconds(p) for p in group) for n, group in pids.items()}
    server: dict[int, float] = {}
    if postmaster is not None:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            pid = int(stat.parent.name)
            if pid == postmaster or ((f := _stat(pid)) and int(f[1]) == postmaster):
                server[pid] = _cpu_seconds(pid)
    out["postgres"] = server
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    out["machine"] = (sum(cpu) - cpu[3] - cpu[4]) / CLK_TCK
    out["wall"] = time.time()
    return out


def _cpu_pct(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """% of one core over the window for each group; `other`: the rest of the machine."""
    spent = {k: after[k] - before[k] for k in before if k not in ("wall", "postgres")}
    db = after["postgres"]
    spent["postgres"] = sum(v - before["postgres"].get(p, 0.0) for p, v in db.items())
    spent["other"] = spent["machine"] - sum(v for k, v in spent.items() if k != "machine")
    elapsed = after["wall"] - before["wall"]
    return {k: round(v / elapsed * 100, 1) for k, v in spent.items()}


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _rss_mb(pid: int) -> float:
    for line in _read(Path(f"/proc/{pid}/status")).splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _metrics(base: str, token: str) -> dict[str, float]:
    """The live hub's counters from /metrics (those it exports), summed over labels."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).text  # fmt: skip
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in METRICS:
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _report(f: dict[str, Any]) -> None:
    _say(f"latency ms: p50 {f['p50_ms']}  p90 {f['p90_ms']}  p99 {f['p99_ms']}  "
         f"p99.9 {f['p999_ms']}  max {f['max_item_age_ms']}  (server's share: p50 "
         f"{f['server_p50_ms']}, p99 {f['server_p99_ms']}; worst client's p99 "
         f"{f['worst_client_p99_ms']})")  # fmt: skip
    _say(f"throughput: {f['updates_per_s']} updates/s in, {f['items_per_s']} items/s and "
         f"{f['frames_per_s']} frames/s out (due: {f['expected_items_per_s']} items/s, ratio "
         f"{f['delivery_ratio']}); outside bbox: {f['outside_bbox']}")  # fmt: skip
    _say(f"CPU % of one core: API {f['api_cpu_pct']}, PostgreSQL {f['postgres_cpu_pct']}, "
         f"feeder {f['feeder_cpu_pct']}, clients {f['clients_cpu_pct']}, anything else "
         f"{f['other_cpu_pct']}, whole machine {f['machine_cpu_pct']} of {f['cpus'] * 100}; "
         f"API RSS {f['api_rss_mb']} MB; NOTIFY queue use {f['notify_queue_usage']}")  # fmt: skip
