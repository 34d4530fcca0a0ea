"""Distributions of durations: count, p50, p90 and mean, the figures every report shows."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between the closest ranks, as
    PostgreSQL's `percentile_cont` and numpy's default compute it. `values` need not be
    sorted; an empty sequence has no percentile."""
    if not values:
        raise ValueError("percentile of no values: filter out empty groups first")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Distribution:
    count: int
    p50: float | None
    p90: float | None
    mean: float | None

    def rounded(self, places: int = 2) -> Distribution:
        """For people and files: minutes to two places are plenty."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, places)

        return Distribution(self.count, r(self.p50), r(self.p90), r(self.mean))


def distribution(values: Iterable[float]) -> Distribution:
    """Count, median, 90th percentile and mean; None for the figures of an empty group."""
    data = list(values)
    if not data:
        return Distribution(0, None, None, None)
    return Distribution(
        len(data), percentile(data, 50), percentile(data, 90), math.fsum(data) / len(data)
    )
