"""Analytics, the pure part: distributions, stage durations, on-time classification, great-circle
distances and stop dwell (docs/analytics.md). No I/O: values in, numbers out."""

from .geo import EARTH_RADIUS_M, haversine_m, path_length_m
from .ontime import OnTime, OnTimeTally, classify
from .stages import STAGES, TOTAL, OrderEvent, StageDuration, stage_durations
from .stats import Distribution, distribution, percentile
from .stops import DwellEnd, dwell_end

__all__ = [
    "EARTH_RADIUS_M",
    "STAGES",
    "TOTAL",
    "Distribution",
    "DwellEnd",
    "OnTime",
    "OnTimeTally",
    "OrderEvent",
    "StageDuration",
    "classify",
    "distribution",
    "dwell_end",
    "haversine_m",
    "path_length_m",
    "percentile",
    "stage_durations",
]
