"""The processes `tracklane bench live` starts: the feeder and the WebSocket clients.

Each runs as `python -m tracklane.bench.live_procs feed|clients`, reads its configuration as
one JSON line on stdin, prints `{"ready": ...}` once it is set up, then reads a second line
`{"t0": epoch s, "t1": epoch s}`, the measuring window, and ends after `t1` with one JSON
line of figures on stdout. Errors end the process with `{"error": "..."}` as that line.

Every time here is `time.time()` on this machine, the clock the database's
`clock_timestamp()` reads too, so an item's latency is its receive time minus its `at`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
import threading
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

METRES_PER_DEGREE = 111_320.0
TAIL_S = 1.0  # keep running after t1, so the window's last items are received


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Window:
    """The measuring window, sent by the bench on stdin once every process is ready."""

    def __init__(self) -> None:
        self.t0 = math.inf
        self.t1 = math.inf
        self.known = threading.Event()

    def read_from_stdin(self) -> None:
        def read() -> None:
            line = sys.stdin.readline()
            if not line:  # the bench went away: stop now
                self.t0 = self.t1 = 0.0
            else:
                msg = json.loads(line)
                self.t0, self.t1 = float(msg["t0"]), float(msg["t1"])
            self.known.set()

        threading.Thread(target=read, daemon=True).start()

    def over(self, now: float) -> bool:
        return self.known.is_set() and now > self.t1 + TAIL_S


def inside(lat: np.ndarray, lon: np.ndarray, bboxes: np.ndarray) -> np.ndarray:
    """Boolean matrix [point, bbox]: whether each point lies in each [w, s, e, n] bbox."""
    w, s, e, n = (bboxes[:, i][None, :] for i in range(4))
    la, lo = lat[:, None], lon[:, None]
    return (lo >= w) & (lo <= e) & (la >= s) & (la <= n)


# --- the feeder ---------------------------------------------------------------------------


UPDATE = (
    "UPDATE vehicle_state s SET updated_at = now(), last_fix_at = now(),"
    " lat = v.lat, lon = v.lon, speed_mps = v.speed_mps, heading_deg = v.heading"
    " FROM unnest(%s::text[], %s::float8[], %s::float8[], %s::float4[], %s::float4[])"
    " AS v(id, lat, lon, speed_mps, heading) WHERE s.vehicle_id = v.id"
)


def feed(cfg: dict[str, Any]) -> dict[str, Any]:
    """Move every vehicle once per 1/rate s, in `batches` UPDATE statements spread evenly.

    Each statement is its own transaction (autocommit), as each ingest batch is, so the
    statement-level trigger notifies once per statement. Vehicles drive at 5-25 m/s with a
    wandering heading and bounce off the region's edges, so they cross the clients' bboxes.
    """
    import psycopg

    rng = np.random.default_rng(cfg["seed"] + 1)
    west, south, east, north = cfg["region"]
    bboxes = np.array(cfg["bboxes"], dtype=float).reshape(-1, 4)
    with psycopg.connect(cfg["database_url"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT vehicle_id, lat, lon FROM vehicle_state ORDER BY vehicle_id"
        ).fetchall()
        ids = [r[0] for r in rows]
        lat = np.array([r[1] for r in rows], dtype=float)
        lon = np.array([r[2] for r in rows], dtype=float)
        count = len(ids)
        speed = rng.uniform(5.0, 25.0, count)
        heading = rng.uniform(0.0, 360.0, count)
        batches = max(1, min(cfg["batches"], count))
        cuts = np.linspace(0, count, batches + 1).astype(int)
        # Arrays go as text literals: psycopg adapts a list element by element, which cost
        # the feeder more CPU than the statements themselves.
        id_lists = [_literal(ids[a:b]) for a, b in itertools.pairwise(cuts)]
        dt = 1.0 / cfg["rate"]
        gap = dt / batches
        window = Window()
        window.read_from_stdin()
        _emit({"ready": count})
        # (planned start, start, end, rows, expected items) for each statement
        log: list[tuple[float, float, float, int, int]] = []
        start = time.time()
        k = 0
        while True:
            planned = start + k * gap
            now = time.time()
            if window.over(now):
                break
            if planned > now:
                time.sleep(planned - now)
            i = k % batches
            a, b = cuts[i], cuts[i + 1]
            k += 1
            if a == b:
                continue
            heading[a:b] = (heading[a:b] + rng.normal(0.0, 8.0, b - a)) % 360.0
            rad = np.radians(heading[a:b])
            step = speed[a:b] * dt / METRES_PER_DEGREE
            lat[a:b] += step * np.cos(rad)
            lon[a:b] += step * np.sin(rad) / np.cos(np.radians(lat[a:b]))
            _bounce(lat, heading, a, b, south, north, 180.0)
            _bounce(lon, heading, a, b, west, east, 360.0)
            hits = int(inside(lat[a:b], lon[a:b], bboxes).sum()) if len(bboxes) else 0
            t_start = time.time()
            conn.execute(
                UPDATE,
                (id_lists[i], _literal(lat[a:b]), _literal(lon[a:b]),
                 _literal(speed[a:b]), _literal(heading[a:b])),
            )  # fmt: skip
            log.append((planned, t_start, time.time(), int(b - a), hits))
    t0, t1 = window.t0, window.t1
    mine = [r for r in log if t0 <= r[1] <= t1]
    durations = sorted((r[2] - r[1]) * 1000 for r in mine) or [0.0]
    behind = [(r[1] - r[0]) * 1000 for r in mine] or [0.0]
    return {
        "statements": len(mine),
        "updates": sum(r[3] for r in mine),
        "expected_items": sum(r[4] for r in mine),
        "statement_p50_ms": round(float(np.percentile(durations, 50)), 2),
        "statement_p99_ms": round(float(np.percentile(durations, 99)), 2),
        "statement_max_ms": round(durations[-1], 2),
        "max_behind_schedule_ms": round(max(behind), 1),
        "rows_per_statement": round(count / batches),
    }


def _literal(values: Any) -> str:
    """A PostgreSQL array literal of plain ids or floats."""
    items = values.tolist() if isinstance(values, np.ndarray) else values
    return "{" + ",".join(map(str, items)) + "}"


def _bounce(
    values: np.ndarray, heading: np.ndarray, a: int, b: int, low: float, high: float, mirror: float
) -> None:
    """Reflect positions that left [low, high] back inside and turn their heading."""
    seg = values[a:b]
    under, over = seg < low, seg > high
    seg[under] = 2 * low - seg[under]
    seg[over] = 2 * high - seg[over]
    np.clip(seg, low, high, out=seg)
    turned = under | over
    heading[a:b][turned] = (mirror - heading[a:b][turned]) % 360.0


# --- the WebSocket clients ----------------------------------------------------------------


class ClientStats:
    """What one client received inside the window: item latencies and what went wrong."""

    def __init__(self, bbox: list[float]) -> None:
        self.bbox = bbox
        self.latency = array("f")  # receive time - the notification's `at`, ms
        self.server = array("f")  # the frame's sent_at - `at`, ms: the server's share
        self.frames = 0
        self.items = 0
        self.items_all = 0  # at any time, window or not
        self.outside = 0
        self.outside_example: dict[str, Any] | None = None
        self.other = Counter[str]()  # messages that are not vehicle frames, by type
        self.close_code: int | None = None
        self.close_reason = ""
        self.compression = ""
        self.window = Window()
        self.ws: Any = None
        self.closing = False


async def _one_client(
    url: str, token: str, stats: ClientStats, ready: asyncio.Queue, compression: bool
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    w, s, e, n = stats.bbox
    subscribed = False
    try:
        async with connect(
            url,
            max_size=2**24,
            open_timeout=30,
            close_timeout=2,
            compression="deflate" if compression else None,  # browsers offer deflate
        ) as ws:
            stats.ws = ws
            stats.compression = ws.response.headers.get("Sec-WebSocket-Extensions", "") or ""
            await ws.send(json.dumps({"type": "auth", "token": token}))
            hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if hello.get("type") != "ready":
                raise RuntimeError(f"auth answered {hello}")
            await ws.send(
                json.dumps({"type": "subscribe", "streams": ["vehicles"], "bbox": stats.bbox})
            )
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if msg.get("type") == "subscribed":
                    break
                if msg.get("type") == "error":
                    raise RuntimeError(f"subscribe answered {msg}")
            subscribed = True
            await ready.put(None)
            window = stats.window
            # Until the bench's watcher closes the socket after the window.
            async for raw in ws:
                now = time.time()
                now_ms = now * 1000.0
                msg = json.loads(raw)
                if msg.get("type") != "vehicles":
                    stats.other[str(msg.get("type"))] += 1
                    continue
                items = msg["items"]
                stats.items_all += len(items)
                for item in items:
                    la, lo = item["lat"], item["lon"]
                    if not (w <= lo <= e and s <= la <= n):
                        stats.outside += 1
                        stats.outside_example = stats.outside_example or item
                if window.t0 <= now <= window.t1:
                    stats.frames += 1
                    stats.items += len(items)
                    sent = msg.get("sent_at", now_ms)
                    stats.latency.extend([now_ms - i["at"] for i in items])
                    stats.server.extend([sent - i["at"] for i in items])
            if not stats.closing:
                stats.close_code = ws.close_code
                stats.close_reason = f"server closed: {ws.close_reason}"
    except ConnectionClosed as exc:
        rcvd = exc.rcvd
        stats.close_code = rcvd.code if rcvd else 1006
        stats.close_reason = rcvd.reason if rcvd else "no close frame"
    except Exception as exc:  # one client failing is a figure, not the end of the run
        stats.close_code = stats.close_code or -1
        stats.close_reason = f"{type(exc).__name__}: {exc}"
    finally:
        if not subscribed:
            await ready.put(stats.close_reason or "closed before subscribing")


async def _close_after_window(all_stats: list[ClientStats], window: Window) -> None:
    await asyncio.get_running_loop().run_in_executor(None, window.known.wait)
    await asyncio.sleep(max(0.0, window.t1 + TAIL_S - time.time()))
    for st in all_stats:
        st.closing = True
    await asyncio.gather(*(st.ws.close() for st in all_stats if st.ws is not None))


async def run_clients(cfg: dict[str, Any]) -> dict[str, Any]:
    window = Window()
    ready: asyncio.Queue = asyncio.Queue()
    all_stats = [ClientStats(list(b)) for b in cfg["bboxes"]]
    for st in all_stats:
        st.window = window
    tasks = [
        asyncio.create_task(_one_client(cfg["url"], cfg["token"], st, ready, cfg["compression"]))
        for st in all_stats
    ]
    failures = []
    for _ in all_stats:  # every client either subscribed or failed
        got = await asyncio.wait_for(ready.get(), 120)
        if got is not None:
            failures.append(got)
    if failures:
        for task in tasks:
            task.cancel()
        return {"error": f"{len(failures)} clients failed to subscribe, e.g. {failures[0]}"}
    window.read_from_stdin()
    _emit({"ready": len(all_stats)})
    await asyncio.gather(*tasks, _close_after_window(all_stats, window))
    latency = np.concatenate([np.frombuffer(st.latency, dtype=np.float32) for st in all_stats])
    server = np.concatenate([np.frombuffer(st.server, dtype=np.float32) for st in all_stats])
    out = Path(cfg["out"])
    np.save(out.with_suffix(".latency.npy"), latency)
    np.save(out.with_suffix(".server.npy"), server)
    other: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    for st in all_stats:
        other.update(st.other)
        if st.close_code is not None:
            closes[f"{st.close_code} {st.close_reason}".strip()] += 1
    per_client_p99 = [
        float(np.percentile(np.frombuffer(st.latency, dtype=np.float32), 99))
        for st in all_stats
        if len(st.latency)
    ]
    example = next((st.outside_example for st in all_stats if st.outside_example), None)
    return {
        "clients": len(all_stats),
        "frames": sum(st.frames for st in all_stats),
        "items": sum(st.items for st in all_stats),
        "items_all": sum(st.items_all for st in all_stats),
        "outside_bbox": sum(st.outside for st in all_stats),
        "outside_example": example,
        "clients_without_items": sum(1 for st in all_stats if not st.items),
        "per_client_p99_ms": per_client_p99,
        "other_messages": dict(other),
        "closed_early": dict(closes),
        "compression": sorted({st.compression for st in all_stats}),
    }


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else ""
    cfg = json.loads(sys.stdin.readline())
    try:
        if role == "feed":
            result = feed(cfg)
        elif role == "clients":
            result = asyncio.run(run_clients(cfg))
        else:
            result = {"error": f"unknown role {role!r}: feed or clients"}
    except Exception as exc:
        result = {"error": f"{role}: {type(exc).__name__}: {exc}"}
    _emit(result)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
