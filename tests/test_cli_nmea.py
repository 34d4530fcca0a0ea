"""`tracklane nmea decode FILE`, run as a user would: a subprocess on a recorded log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
LOG = ROOT / "tests" / "data" / "nmea" / "garmin25lp.log"


def tracklane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracklane", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_decode_prints_one_position_a_line_then_the_counts() -> None:
    done = tracklane("nmea", "decode", str(LOG))
    assert done.returncode == 0, done.stderr
    *positions, summary = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(positions) == summary["fixes"] == 10
    for position in positions:
        assert set(position) == {"time", "lat", "lon", "speed", "course"}
        assert position["time"].startswith("2005-03-15T12:")
        assert 42.35 < position["lat"] < 42.37 and 13.35 < position["lon"] < 13.38
        assert position["speed"] >= 0 and 0 <= position["course"] < 360
    times = [p["time"] for p in positions]
    assert times == sorted(set(times))
    # The receiver spends its first epochs without a fix: void RMCs, GGA quality 0.
    assert summary["rejected"]["no_fix"] > 0
    assert set(summary) >= {"fixes", "rejected", "week_rollover_corrected"}


def test_decode_checks_the_clock_when_told_when_the_log_was_recorded() -> None:
    # A day before the recording, every fix is in the future.
    done = tracklane("nmea", "decode", "--now", "2005-03-14T12:00:00", str(LOG))
    assert done.returncode == 0, done.stderr
    (summary,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert summary["fixes"] == 0 and summary["rejected"]["future"] > 0


def test_a_missing_file_is_a_clear_error() -> None:
    done = tracklane("nmea", "decode", "no-such.log")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "NMEA log no-such.log does not exist" in done.stderr
