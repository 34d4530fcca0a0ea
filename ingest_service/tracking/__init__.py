"""Positions move orders: geofence transitions, ETAs and stale trackers, inside ingest.

`PositionTracker` is called by the ingest writer with the positions it has just stored, in
the same transaction (tracker.py describes the order of operations and locks);
`open_stale_trackers` is run by the consumer about once a minute.
"""

from .rows import NewPosition
from .stale import open_stale_trackers
from .tracker import PositionTracker

__all__ = ["NewPosition", "PositionTracker", "open_stale_trackers"]
