"""`tracklane bench live` end to end with a tiny workload: every item lies in its viewport."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracklane.bench.live import REGION, run_live_bench, viewports


def test_viewports_lie_in_the_region_and_cover_5_to_15_percent() -> None:
    west, south, east, north = REGION
    area = (east - west) * (north - south)
    for w, s, e, n in viewports(200, np.random.default_rng(3)):
        assert west <= w < e <= east and south <= s < n <= north
        assert 0.049 <= (e - w) * (n - s) / area <= 0.151


@pytest.mark.slow  # 4 processes and a migrated database: ~15-25 s
def test_live_bench_delivers_positions_inside_each_viewport(pg_server_url: str) -> None:

    result = run_live_bench(
        vehicles=200, clients=5, seconds=3.0, warmup=1.0, database_url=pg_server_url
    )

    json.dumps(result)  # the CLI prints it as the last line
    for key in ("p99_ms", "p50_ms", "clients", "vehicles", "updates_per_s", "items_per_s",
                "frames_per_s", "api_cpu_pct", "outside_bbox", "max_item_age_ms"):  # fmt: skip
        assert key in result, key
    assert result["clients"] == 5 and result["vehicles"] == 200
    assert result["outside_bbox"] == 0
    assert result["items_per_s"] > 0 and result["frames_per_s"] > 0
    assert result["updates_per_s"] > 0
    assert result["closed_early"] == {}
    assert result["p99_ms"] is not None and result["p99_ms"] >= result["p50_ms"]
