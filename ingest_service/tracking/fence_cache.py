"""FenceIndex per set of fences, built once and kept while the fences do not change.

A fence is keyed by its id and `geofences.version` (bumped by every edit), so an edited fence
is read afresh on the next batch without any invalidation message.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable

from geofence import Fence, FenceError, FenceIndex, fence_from_geojson

from .loading import FenceRow

log = logging.getLogger(__name__)
Key = tuple[tuple[int, int], ...]  # ((fence id, version), ...) sorted


class FenceCache:
    """Not thread-safe: one per writer thread."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._fences: OrderedDict[tuple[int, int], Fence | None] = OrderedDict()
        self._indexes: OrderedDict[Key, FenceIndex] = OrderedDict()

    def index(self, rows: Iterable[FenceRow]) -> FenceIndex | None:
        """The index of these fences (their ids as strings); None when none is usable. A
        fence whose GeoJSON is refused is left out and logged once per version."""
        rows = sorted(rows, key=lambda r: r.id)
        key: Key = tuple((r.id, r.version) for r in rows)
        if key in self._indexes:
            self._indexes.move_to_end(key)
            return self._indexes[key]
        fences = [f for f in map(self._fence, rows) if f is not None]
        if not fences:
            return None
        index = FenceIndex(fences)
        self._indexes[key] = index
        if len(self._indexes) > self.size:
            self._indexes.popitem(last=False)
        return index

    def _fence(self, row: FenceRow) -> Fence | None:
        key = (row.id, row.version)
        if key not in self._fences:
            feature = dict(row.feature)
            feature["id"] = str(row.id)
            feature["properties"] = {**(feature.get("properties") or {}), "kind": row.kind}
            try:
                self._fences[key] = fence_from_geojson(feature)
            except FenceError as err:
                log.warning("geofence %d (version %d) ignored by tracking: %s", row.id,
                            row.version, err)  # fmt: skip
                self._fences[key] = None
            if len(self._fences) > self.size * 4:
                self._fences.popitem(last=False)
        return self._fences[key]
