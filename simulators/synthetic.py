"""Synthetic event batches for tests and benchmarks (no device, no wire protocol)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from event_contract import (
    SCHEMA_VERSION,
    Batch,
    CodeKind,
    PositionEvent,
    ReadPoint,
    ScanEvent,
    Stage,
    new_event_id,
)


def positions(
    *,
    site: str,
    gateway: str,
    device: str,
    count: int,
    start_seq: int = 0,
    start: datetime | None = None,
    rng: random.Random | None = None,
) -> list[PositionEvent]:
    """`count` fixes of a vehicle wandering near Shanghai, one a second, ending now."""
    rng = rng or random.Random(0)
    t0 = start or datetime.now(UTC) - timedelta(seconds=count)
    lat, lon = 31.23 + rng.uniform(-0.1, 0.1), 121.47 + rng.uniform(-0.1, 0.1)
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        lat += rng.uniform(-1e-4, 1e-4)
        lon += rng.uniform(-1e-4, 1e-4)
        out.append(
            PositionEvent(
                event_id=new_event_id(), device=device, seq=start_seq + i,
                device_time=t0 + timedelta(seconds=i), received_at=now,
                lat=round(lat, 7), lon=round(lon, 7), speed_mps=round(rng.uniform(0, 25), 2),
                heading_deg=round(rng.uniform(0, 359.9), 1), fix_quality=1,
                hdop=round(rng.uniform(0.6, 2.5), 1), satellites=rng.randint(5, 14),
            )
        )  # fmt: skip
    return out


def scans(
    *, site: str, gateway: str, device: str, door: str, count: int, start_seq: int = 0
) -> list[ScanEvent]:
    now = datetime.now(UTC)
    return [
        ScanEvent(
            event_id=new_event_id(), device=device, seq=start_seq + i, device_time=now,
            received_at=now, code=f"00{340123450000000000 + i:018d}", code_kind=CodeKind.BARCODE,
            symbology="gs1-128", read_point=ReadPoint(site=site, door=door), stage=Stage.DISPATCH,
        )
        for i in range(count)
    ]  # fmt: skip


def batches(events: list, *, site: str, gateway: str, size: int) -> Iterator[Batch]:
    for i in range(0, len(events), size):
        yield Batch(
            schema_version=SCHEMA_VERSION,
            site=site,
            gateway=gateway,
            sent_at=datetime.now(UTC),
            events=events[i : i + size],
        )
