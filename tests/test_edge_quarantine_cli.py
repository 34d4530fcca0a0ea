"""`tracklane edge quarantine`: what the broker refused for good, listed and requeued, on a
real SQLite outbox file, run as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.outbox import Outbox
from event_contract import DeviceState, DeviceStatus, PositionEvent, new_event_id

GATEWAY = """site = "wh1"
gateway = "truck-1"
{outbox}

[[sources]]
type = "nmea_tcp"
device = "gps-1"
host = "127.0.0.1"
port = 5001
"""


def tracklane(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    return subprocess.run(
        [sys.executable, "-m", "tracklane", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def position(seq: int) -> PositionEvent:
    now = datetime.now(UTC)
    return PositionEvent(
        event_id=new_event_id(), device="gps-1", seq=seq, device_time=now, received_at=now,
        lat=52.0, lon=4.4,
    )  # fmt: skip


def status(seq: int) -> DeviceStatus:
    now = datetime.now(UTC)
    return DeviceStatus(
        event_id=new_event_id(), device="gps-1", seq=seq, device_time=now, received_at=now,
        state=DeviceState.ONLINE,
    )  # fmt: skip


def test_lists_the_quarantine_by_reason_and_kind_and_requeues_it(tmp_path: Path) -> None:
    box_path = tmp_path / "state" / "truck-1.sqlite"
    config = tmp_path / "truck-1.toml"
    config.write_text(GATEWAY.format(outbox=f'[outbox]\npath = "{box_path}"'))
    before = datetime.now(UTC).replace(microsecond=0)
    with Outbox(box_path) as box:
        box.append([position(seq) for seq in range(5)] + [status(5), status(6)])
        positions = box.peek_batch("positions", 5)
        box.quarantine([r.rowid for r in positions[:3]], reason=0x87)  # not authorized
        box.quarantine([r.rowid for r in box.peek_batch("status", 2)], reason=0x90)
        # Two positions still waiting to be sent.

    listed = tracklane("edge", "quarantine", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert f"{box_path}: 5 events in quarantine" in listed.stdout
    assert re.search(r"0x87 positions: 3, the oldest refused .*not authorized", listed.stdout)
    assert re.search(r"0x90 status: 2, the oldest refused .*topic name invalid", listed.stdout)
    oldest = re.search(r"oldest refused (\S+ \S+Z)", listed.stdout)
    assert oldest is not None
    when = datetime.strptime(oldest.group(1), "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= when <= datetime.now(UTC) + timedelta(seconds=1)
    with Outbox(box_path) as box:  # listing changed nothing
        assert box.quarantined() == 5 and box.depth() == 2

    requeued = tracklane("edge", "quarantine", "--config", str(config), "--requeue")
    assert requeued.returncode == 0, requeued.stderr
    assert "requeued 5 events" in requeued.stdout
    with Outbox(box_path) as box:
        assert box.quarantined() == 0 and box.depth() == 7
        # Back in the queue, behind the two positions that were waiting.
        seqs = [r.seq for r in box.peek_batch("positions", 10)]
        assert seqs == [3, 4, 0, 1, 2]

    again = tracklane("edge", "quarantine", "--config", str(config))
    assert again.returncode == 0 and "0 events in quarantine" in again.stdout


def test_an_outbox_in_memory_or_not_yet_created_is_a_clear_error(tmp_path: Path) -> None:
    in_memory = tmp_path / "memory.toml"
    in_memory.write_text(GATEWAY.format(outbox=""))
    result = tracklane("edge", "quarantine", "--config", str(in_memory))
    assert result.returncode == 2
    assert "keeps its outbox in memory" in result.stderr and "Traceback" not in result.stderr

    missing = tmp_path / "missing.toml"
    missing.write_text(GATEWAY.format(outbox=f'[outbox]\npath = "{tmp_path / "none.sqlite"}"'))
    result = tracklane("edge", "quarantine", "--config", str(missing), "--requeue")
    assert result.returncode == 2 and "no outbox at" in result.stderr
    assert not (tmp_path / "none.sqlite").exists()
