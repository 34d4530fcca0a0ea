"""`tracklane bench geofence`: points tested against a city's fences per second, on one core.

The city: random fences in a disc of 25 km radius around Brussels, 60 % circles (customer
sites, radius 30-300 m), 39 % star-shaped polygons of 6-24 vertices (warehouses and depots,
50-600 m across their longest arm) and 1 % large polygons (restricted zones, 1-3 km).
Points fall uniformly in the same disc.

What is counted: a "check" is one point put through `FenceIndex.contains` against the whole
fence set, i.e. one answer to "which of these N fences contain this point", whatever the
number of fences it meets. checks/s = points in all batches / wall time of the calls, with
batches of `batch` points. Latency is the wall time of one call with `latency_batch` points.
The process is pinned to one CPU where the OS allows it, and numpy runs single-threaded
code on this path, so the figures are for one core.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import numpy as np
from shapely.geometry import Polygon

from geofence import Fence, FenceIndex, FenceKind, LocalFrame, circle_fence, polygon_fence

CITY = (4.3517, 50.8503)  # Brussels, Grand-Place
CITY_RADIUS_M = 25_000.0


def run_geofence_bench(
    *,
    fence_counts: tuple[int, ...] = (1_000, 10_000),
    batch: int = 10_000,
    latency_batch: int = 1_000,
    seconds: float = 2.0,
    seed: int = 1,
    pin: bool = True,
) -> dict[str, float | int]:
    cpu = _pin_one_core() if pin else "unpinned"
    rng = np.random.default_rng(seed)
    frame = LocalFrame.at(*CITY)
    result: dict[str, float | int] = {"batch": batch, "latency_batch": latency_batch}
    for n in fence_counts:
        fences = random_fences(n, rng, frame)
        t0 = time.perf_counter()
        index = FenceIndex(fences)
        index.contains(*_points(1, rng, frame))  # builds the grid
        build_s = time.perf_counter() - t0
        lons, lats = _points(batch, rng, frame)
        calls, hits, t0 = 0, 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds or calls < 3:
            hits += len(index.contains(lons, lats))
            calls += 1
        rate = calls * batch / elapsed
        small = _points(latency_batch, rng, frame)
        lat_ms = []
        for _ in range(max(20, int(seconds / 0.002))):
            t = time.perf_counter()
            index.contains(*small)
            lat_ms.append((time.perf_counter() - t) * 1000)
            if sum(lat_ms) > seconds * 1000:
                break
        lat_ms.sort()
        label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        result[f"checks_per_s_{label}"] = round(rate)
        result[f"hits_per_point_{label}"] = round(hits / (calls * batch), 3)
        result[f"batch_latency_ms_p50_{label}"] = round(statistics.median(lat_ms), 3)
        result[f"batch_latency_ms_p99_{label}"] = round(lat_ms[int(0.99 * (len(lat_ms) - 1))], 3)
        result[f"index_build_s_{label}"] = round(build_s, 3)
        print(
            f"bench: {n} fences (cpu {cpu}): {rate:,.0f} checks/s in batches of {batch}, "
            f"{hits / (calls * batch):.3f} fences per point; {latency_batch} points take "
            f"{statistics.median(lat_ms):.2f} ms (p50), "
            f"{result[f'batch_latency_ms_p99_{label}']} ms (p99); index built in {build_s:.2f} s",
            file=sys.stderr,
        )
    return result


def random_fences(n: int, rng: np.random.Generator, frame: LocalFrame) -> list[Fence]:
    """`n` fences scattered over the city, in the mix the module doc describes."""
    xs, ys = _in_disc(n, rng)
    kinds = rng.random(n)
    fences = []
    for i in range(n):
        if kinds[i] < 0.60:
            lon, lat = frame.inverse(xs[i], ys[i])
            fences.append(
                circle_fence(
                    f"c{i}", FenceKind.CUSTOMER_SITE, float(lon), float(lat), rng.uniform(30, 300)
                )
            )
            continue
        big = kinds[i] >= 0.99
        arm = rng.uniform(1_000, 3_000) if big else rng.uniform(50, 600)
        k = int(rng.integers(6, 25))
        angles = (np.arange(k) + rng.uniform(0, 0.8, k)) * (2 * math.pi / k)
        arms = arm * rng.uniform(0.5, 1.0, k)
        lons, lats = frame.inverse(xs[i] + arms * np.cos(angles), ys[i] + arms * np.sin(angles))
        kind = (
            FenceKind.RESTRICTED_ZONE if big else rng.choice([FenceKind.WAREHOUSE, FenceKind.DEPOT])
        )
        fences.append(polygon_fence(f"p{i}", kind, Polygon(np.column_stack([lons, lats]))))
    return fences


def _in_disc(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    r = CITY_RADIUS_M * np.sqrt(rng.random(n))
    a = rng.uniform(0, 2 * math.pi, n)
    return r * np.cos(a), r * np.sin(a)


def _points(n: int, rng: np.random.Generator, frame: LocalFrame) -> tuple[np.ndarray, np.ndarray]:
    return frame.inverse(*_in_disc(n, rng))


def _pin_one_core() -> int | str:
    if not hasattr(os, "sched_setaffinity"):
        return "unpinned"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu
