"""Stale trackers: a vehicle on the road whose tracker has gone quiet opens an exception."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from geofence.eta import is_stale


def open_stale_trackers(conn: psycopg.Connection[Any], now: datetime, minutes: float) -> int:
    """Open a `stale_tracker` exception for each vehicle with a departed trip and a tracker
    whose last fix (or, with none, its departure) is older than `minutes`; once per vehicle
    and silence episode (the dedup key names the last fix). Returns how many were opened."""
    silent_s = minutes * 60
    cutoff = now - timedelta(seconds=silent_s)
    rows = conn.execute(
        "SELECT DISTINCT ON (t.vehicle_id) t.vehicle_id, t.id, t.departed_at, s.last_fix_at"
        " FROM trips t LEFT JOIN vehicle_state s ON s.vehicle_id = t.vehicle_id"
        " WHERE t.state = 'departed'"
        " AND EXISTS (SELECT 1 FROM trackers k WHERE k.vehicle_id = t.vehicle_id)"
        " AND coalesce(s.last_fix_at, t.departed_at) < %s"
        " ORDER BY t.vehicle_id, t.departed_at DESC NULLS LAST",
        (cutoff,),
    ).fetchall()
    opened = 0
    for vehicle, trip, departed_at, last_fix_at in rows:
        since = last_fix_at or departed_at
        if since is None or not is_stale(since.timestamp(), now_s=now.timestamp(),
                                         silent_s=silent_s):  # fmt: skip
            continue
        episode = last_fix_at.isoformat() if last_fix_at else "never"
        heard = f"last position {last_fix_at:%Y-%m-%d %H:%M %Z}" if last_fix_at else "no position"
        summary = (
            f"vehicle {vehicle} on trip {trip}: {heard}, silent over {minutes:g} min;"
            " check its tracker and gateway, or call the driver"
        )
        cur = conn.execute(
            "INSERT INTO exceptions (kind, summary, vehicle_id, trip_id, opened_by, dedup_key)"
            " VALUES ('stale_tracker', %s, %s, %s, 'rule:stale_tracker', %s)"
            " ON CONFLICT (dedup_key) DO NOTHING",
            (summary, vehicle, trip, f"stale_tracker:{vehicle}:{episode}"),
        )
        opened += cur.rowcount
    return opened
