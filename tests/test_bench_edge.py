"""`tracklane bench edge` in-process with a tiny workload: every smoothed scan is acked."""

from __future__ import annotations

from tracklane.bench.edge import run_edge_bench


def test_edge_bench_publishes_every_scan() -> None:

    result = run_edge_bench(reads=5_000, doors=3)

    for key in ("raw_reads", "scans", "scans_per_s", "raw_reads_per_s", "peak_rss_mb"):
        assert key in result
    assert result["raw_reads"] == 5_000
    assert result["scans"] == result["dwells"] > 0  # one scan per tag pass
    assert result["published"] == result["scans"]  # every one acknowledged by the broker
    assert result["unacknowledged"] == 0 and result["clean_close"] is True
    assert result["raw_reads_per_s"] > 0 and result["peak_rss_mb"] > 0
